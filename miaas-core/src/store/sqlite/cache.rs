//! The fleet as the last transaction left it, so that a placement decision does not
//! re-read every node and deployment, and reads are answered from memory.
//!
//! Valid while nothing else wrote the file: every write of this store goes through
//! its one writer connection, which keeps the cache in step (or drops it). A
//! transaction checks SQLite's `PRAGMA data_version` on that connection, which
//! changes only when another connection (another process) commits, and reloads;
//! a read checks the WAL-index header against the snapshot's stamp.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockWriteGuard};

use super::freshness::OwnCommit;
use super::wal_index::{WalHeader, WalIndex};
use crate::model::{Deployment, NodeMetrics, NodeRecord, NodeUpdate};
use crate::store::{Snapshot, SnapshotVersion};

/// Numbers the reads of the fleet, process-wide.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A snapshot with the `data_version` it was read at.
#[derive(Debug)]
pub(super) struct CachedSnapshot {
    /// `PRAGMA data_version` of the writer connection when read.
    pub data_version: i64,
    /// The fleet, versioned.
    pub snapshot: Snapshot,
    /// The WAL-index header when the snapshot was last known to be what is
    /// committed; readers use the snapshot only while the header still reads so.
    pub wal: Option<WalHeader>,
}

impl CachedSnapshot {
    pub(super) fn new(data_version: i64, snapshot: Snapshot) -> Self {
        let mut cached = Self {
            data_version,
            snapshot,
            wal: None,
        };
        cached.new_generation();
        cached
    }

    /// Lays committed writes over the snapshot; a new revision.
    pub(super) fn apply(&mut self, writes: &[Deployment]) {
        self.snapshot.apply(writes);
        if let Some(version) = self.snapshot.version.as_mut() {
            version.revision += 1;
        }
    }

    /// Lays a committed registration over the nodes, as the upsert wrote it. Node
    /// capabilities changed, so the snapshot gets a new generation: what callers
    /// derived from the old one is not reused.
    pub(super) fn upsert_node(&mut self, node: NodeRecord) {
        self.snapshot.upsert_node(node);
        self.new_generation();
    }

    /// Lays a committed cordon or tag change over node `id`; a new generation, as
    /// for a registration.
    pub(super) fn update_node(&mut self, id: &str, update: &NodeUpdate) {
        self.snapshot.update_node(id, update);
        self.new_generation();
    }

    /// Lays flushed heartbeats over the nodes (each only moves forward). The
    /// deployments, and so the version, do not change.
    pub(super) fn heartbeats(&mut self, batch: &[(String, NodeMetrics)]) {
        self.snapshot.heartbeats(batch, true);
    }

    /// Lays one heartbeat written at once (a node back online) over its node.
    pub(super) fn heartbeat(&mut self, node_id: &str, metrics: &NodeMetrics) {
        self.snapshot
            .heartbeats(&[(node_id.to_string(), metrics.clone())], false);
    }

    fn new_generation(&mut self) {
        self.snapshot.version = Some(SnapshotVersion {
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            revision: 0,
        });
    }
}

/// The kept snapshot, shared between the writer's holder, who takes it out for a
/// transaction and puts it back once committed, and readers, who answer from it
/// while it is in (and from the database while it is out).
#[derive(Debug)]
pub(super) struct KeptSnapshot {
    slot: RwLock<Option<CachedSnapshot>>,
    wal_index: WalIndex,
}

impl KeptSnapshot {
    pub(super) fn new(wal_index: WalIndex) -> Self {
        Self {
            slot: RwLock::default(),
            wal_index,
        }
    }

    /// The WAL-index header now.
    pub(super) fn wal_header(&self) -> Option<WalHeader> {
        self.wal_index.header()
    }

    /// With the writer's turn held: `header` becomes the snapshot's stamp when the
    /// writer's `data_version`, read after `header`, shows no other process
    /// committed since the snapshot was read; if one did, the snapshot is dropped.
    pub(super) fn restamp(&self, header: Option<WalHeader>, data_version: Option<i64>) {
        let mut slot = self.slot();
        match (slot.as_mut(), data_version) {
            (Some(cached), Some(version)) if cached.data_version == version => {
                cached.wal = header;
            }
            (Some(cached), None) => cached.wal = None,
            _ => *slot = None,
        }
    }

    fn slot(&self) -> RwLockWriteGuard<'_, Option<CachedSnapshot>> {
        // a panic while patching may have left it half-changed: start over
        self.slot.write().unwrap_or_else(|poisoned| {
            let mut slot = poisoned.into_inner();
            *slot = None;
            slot
        })
    }

    /// Takes the snapshot out (readers go to the database meanwhile).
    pub(super) fn take(&self) -> Option<CachedSnapshot> {
        self.slot().take()
    }

    /// Puts a snapshot (in step with what is committed) back.
    pub(super) fn put(&self, cached: CachedSnapshot) {
        *self.slot() = Some(cached);
    }

    /// Drops the snapshot: it is read afresh when next needed.
    pub(super) fn clear(&self) {
        *self.slot() = None;
    }

    /// Whether no snapshot is kept.
    pub(super) fn is_empty(&self) -> bool {
        self.slot.read().map_or(true, |slot| slot.is_none())
    }

    /// Lays what `commit` wrote over the snapshot, if one is kept: it stays usable
    /// for reads if it was before, and that commit was the only one since.
    pub(super) fn patch(&self, commit: OwnCommit, change: impl FnOnce(&mut CachedSnapshot)) {
        if let Some(cached) = self.slot().as_mut() {
            change(cached);
            cached.wal = commit
                .header_after()
                .filter(|_| cached.wal == commit.before);
        }
    }

    /// `read` over the kept snapshot, while it is what is committed (nothing
    /// committed since its stamp); `None` otherwise.
    pub(super) fn read<T>(&self, read: impl FnOnce(&Snapshot) -> T) -> Option<T> {
        let now = self.wal_index.header()?;
        let slot = self.slot.read().ok()?;
        slot.as_ref()
            .filter(|cached| cached.wal == Some(now))
            .map(|cached| read(&cached.snapshot))
    }
}
