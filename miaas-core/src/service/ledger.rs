//! The placement ledger (every node with what is reserved on it) kept from one
//! decision to the next, so that a decision does not rebuild it from every
//! deployment. It is kept with the snapshot's lineage and the journal position of
//! the state it describes; a later snapshot of the same lineage gets it with the
//! journal's later entries (other decisions' writes, other replicas') replayed
//! over it (see [`Snapshot::lineage`]).

use std::sync::Mutex;

use crate::placement::Cluster;
use crate::store::Snapshot;

/// One kept ledger.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    kept: Mutex<Option<Kept>>,
}

/// A ledger and the state it describes.
#[derive(Debug)]
struct Kept {
    /// The snapshot's lineage.
    lineage: u64,
    /// The snapshot journal's length once the deciding writes are laid over it.
    position: usize,
    /// The snapshot's node mark (see [`Snapshot::node_mark`]).
    nodes_seen: u64,
    /// The heartbeat buffer's mark its nodes were refreshed to.
    heartbeats_seen: u64,
    cluster: Cluster,
}

/// What changed since a kept ledger was made, for its refresh.
#[derive(Debug)]
pub(super) struct Since {
    /// The positions of the nodes changed in the snapshot (`None`: any may have).
    pub(super) nodes: Option<Vec<usize>>,
    /// The heartbeat buffer's mark the ledger was refreshed to.
    pub(super) heartbeats_seen: u64,
}

impl Ledger {
    /// The kept ledger, brought to `snapshot`'s state, if it is of its lineage:
    /// `refresh` first brings its nodes up to date (new nodes included, so that
    /// what the journal books on them counts) and answers the heartbeat mark it
    /// refreshed to (`None`: build it again), then the journal's later entries are
    /// replayed. Answers the ledger and that mark.
    pub(super) fn take_for(
        &self,
        snapshot: &Snapshot,
        refresh: impl FnOnce(&mut Cluster, Since) -> Option<u64>,
    ) -> Option<(Cluster, u64)> {
        let mut kept = self.kept.lock().ok()?.take()?;
        let journal = snapshot.journal();
        if kept.lineage != snapshot.lineage() || kept.position > journal.len() {
            return None;
        }
        let since = Since {
            nodes: (snapshot.nodes_changed_since(kept.nodes_seen)).map(Iterator::collect),
            heartbeats_seen: kept.heartbeats_seen,
        };
        let heartbeats_seen = refresh(&mut kept.cluster, since)?;
        let mut cluster = kept.cluster;
        for change in &journal[kept.position..] {
            if let Some(before) = &change.before {
                cluster.release_reservation(before);
            }
            if let Some(after) = &change.after {
                cluster.book_reservation(after);
            }
        }
        Some((cluster, heartbeats_seen))
    }

    /// Keeps `cluster`, the ledger after decisions over `snapshot` that wrote
    /// `writes` deployments, its nodes refreshed to heartbeat mark
    /// `heartbeats_seen`: it describes the snapshot once the writes are laid over
    /// it (one journal entry each).
    pub(super) fn keep(
        &self,
        snapshot: &Snapshot,
        writes: usize,
        cluster: Cluster,
        heartbeats_seen: u64,
    ) {
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some(Kept {
                lineage: snapshot.lineage(),
                position: snapshot.journal().len() + writes,
                nodes_seen: snapshot.node_mark(),
                heartbeats_seen,
                cluster,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Deployment, NodeRecord};
    use crate::placement::Candidate;

    fn deployment(id: &str, node: Option<&str>, cpus: f64) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "deployment_id": id, "template_id": "t", "action": "apply",
            "status": if node.is_some() { "running" } else { "pending" },
            "message": "", "node_id": node, "env": {}, "requirements": {"cpus": cpus},
            "rendered_compose": "", "revision": 1, "created_at": 1.0, "updated_at": 1.0
        }))
        .expect("deployment")
    }

    fn node(id: &str) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            name: id.into(),
            ip: "10.0.0.1".into(),
            capabilities: serde_json::from_value(
                serde_json::json!({"os": "linux", "cpu_count": 8, "mem_mb": 8000}),
            )
            .expect("capabilities"),
            tags: vec![],
            registered_at: 0.0,
            last_seen: 0.0,
            metrics: None,
            schedulable: true,
        }
    }

    fn ledger_of(snapshot: &Snapshot) -> Cluster {
        let candidates = snapshot
            .nodes()
            .iter()
            .map(|n| Candidate::from_record(n, true));
        Cluster::for_placement(candidates, snapshot.deployments())
    }

    fn reserved(cluster: &Cluster) -> f64 {
        cluster.get("n").map_or(-1.0, |c| c.reserved.cpus)
    }

    #[test]
    fn a_kept_ledger_follows_every_write_of_its_lineage_and_no_other() {
        let ledger = Ledger::default();
        let mut snapshot = Snapshot::new(vec![node("n")], vec![deployment("a", Some("n"), 1.0)]);
        // a decision placed b: its ledger already holds it
        let mut decided = ledger_of(&snapshot);
        decided.reserve("n", &deployment("b", Some("n"), 2.0));
        ledger.keep(&snapshot, 1, decided, 0);
        snapshot.apply(&[deployment("b", Some("n"), 2.0)]);
        // then another replica's writes: a released, c placed
        snapshot.apply(&[deployment("a", None, 1.0), deployment("c", Some("n"), 4.0)]);
        let (cluster, _) = ledger
            .take_for(&snapshot, |_, _| Some(0))
            .expect("same lineage");
        assert_eq!(reserved(&cluster), 6.0, "b and c, not a, and b once");
        assert_eq!(reserved(&cluster), reserved(&ledger_of(&snapshot)));
        assert!(
            ledger.take_for(&snapshot, |_, _| Some(0)).is_none(),
            "taken once"
        );

        ledger.keep(&snapshot, 0, ledger_of(&snapshot), 0);
        snapshot.heartbeats(&[], true);
        assert!(
            ledger.take_for(&snapshot, |_, _| Some(0)).is_some(),
            "heartbeats keep the lineage"
        );
        ledger.keep(&snapshot, 0, ledger_of(&snapshot), 0);
        assert!(
            ledger.take_for(&snapshot, |_, _| None).is_none(),
            "refused by refresh"
        );

        ledger.keep(&snapshot, 0, ledger_of(&snapshot), 0);
        snapshot.remove_node("n");
        assert!(
            ledger.take_for(&snapshot, |_, _| Some(0)).is_none(),
            "a node removed: built again"
        );
    }
}
