//! The placement ledger (every node with what is reserved on it) kept from one
//! transaction to the next, so that a decision does not rebuild it from every
//! deployment. It is reused only for the very snapshot it was left for: the store
//! versions its snapshots, and a ledger is tagged with the version its decisions
//! lead to.

use std::sync::Mutex;

use crate::placement::Cluster;
use crate::store::{Snapshot, SnapshotVersion};

/// One kept ledger.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    kept: Mutex<Option<(SnapshotVersion, Cluster)>>,
}

impl Ledger {
    /// The ledger kept for `snapshot`, if there is one.
    pub(super) fn take_for(&self, snapshot: &Snapshot) -> Option<Cluster> {
        let version = snapshot.version?;
        let mut kept = self.kept.lock().ok()?;
        match kept.take() {
            Some((for_version, cluster)) if for_version == version => Some(cluster),
            _ => None,
        }
    }

    /// Keeps `cluster`, the ledger after decisions over `snapshot`, for the snapshot
    /// that committing them makes (the next revision).
    pub(super) fn keep(&self, snapshot: &Snapshot, cluster: Cluster) {
        let Some(version) = snapshot.version else {
            return;
        };
        let next = SnapshotVersion {
            generation: version.generation,
            revision: version.revision + 1,
        };
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some((next, cluster));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versioned(generation: u64, revision: u64) -> Snapshot {
        let mut snapshot = Snapshot::default();
        snapshot.version = Some(SnapshotVersion {
            generation,
            revision,
        });
        snapshot
    }

    #[test]
    fn a_ledger_is_reused_only_for_the_snapshot_its_decisions_lead_to() {
        let ledger = Ledger::default();
        ledger.keep(&versioned(1, 4), Cluster::default());
        assert!(
            ledger.take_for(&versioned(1, 4)).is_none(),
            "not before the commit"
        );
        ledger.keep(&versioned(1, 4), Cluster::default());
        assert!(
            ledger.take_for(&versioned(2, 5)).is_none(),
            "not after a re-read"
        );
        ledger.keep(&versioned(1, 4), Cluster::default());
        assert!(ledger.take_for(&versioned(1, 5)).is_some());
        assert!(ledger.take_for(&versioned(1, 5)).is_none(), "taken once");
        ledger.keep(&Snapshot::default(), Cluster::default());
        assert!(
            ledger.take_for(&Snapshot::default()).is_none(),
            "unversioned stores"
        );
    }
}
