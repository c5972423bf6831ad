//! What the SQLite store does between the [`Store`](crate::store::Store) calls:
//! exclusive transactions, the kept fleet snapshot and its check for commits by
//! other processes, reading and writing whole deployments.

use sqlx::{Sqlite, SqlitePool, Transaction};

use super::{SqliteStore, cache};
use crate::Result;
use crate::model::{Deployment, NodeRecord};
use crate::store::Snapshot;
use crate::store::rows::NodeRow;

/// The writer connection's `PRAGMA data_version`, read inside a read transaction
/// (the counter is brought up to date when one starts).
async fn data_version(writer: &SqlitePool) -> Option<i64> {
    let mut tx = writer.begin().await.ok()?;
    sqlx::query("SELECT 1 FROM sqlite_master LIMIT 1")
        .execute(&mut *tx)
        .await
        .ok()?;
    let (version,): (i64,) = sqlx::query_as("PRAGMA data_version")
        .fetch_one(&mut *tx)
        .await
        .ok()?;
    tx.commit().await.ok()?;
    Some(version)
}

impl SqliteStore {
    /// A write transaction that holds SQLite's write lock from its first statement.
    pub(super) async fn begin_exclusive(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// `read` over the kept snapshot, when it is what is committed: this store's
    /// writes keep it in step, and a commit by anything else, seen in the
    /// WAL-index, sets it aside. `None` while a transaction has it out, or none is
    /// kept, or something else committed; then, with
    /// [`StoreOptions::fleet_in_memory`](crate::store::StoreOptions), it is brought
    /// up to date in the background when the writer is free: checked again, or read
    /// afresh.
    pub(super) fn in_memory<T>(&self, read: impl FnOnce(&Snapshot) -> T) -> Option<T> {
        if self.writer.is_closed() {
            return None;
        }
        let answer = self.kept.read(read);
        if answer.is_none()
            && self.fleet_in_memory
            && let Ok(turn) = self.turn.clone().try_lock_owned()
        {
            let store = self.clone();
            tokio::spawn(async move {
                let _turn = turn;
                if !store.kept.is_empty() {
                    store.restamp().await;
                } else if let Err(err) = store.keep_snapshot().await {
                    tracing::warn!(error = %err, "the fleet could not be read into memory");
                }
            });
        }
        answer
    }

    /// Reads the fleet into the kept snapshot; the caller holds the writer's turn.
    async fn keep_snapshot(&self) -> Result<()> {
        // read before the data, so that a commit in between shows as a change
        let header = self.kept.wal_header();
        let mut tx = self.writer.begin().await?;
        let mut cached = self.fresh_snapshot(&mut tx, None).await?;
        tx.commit().await?;
        cached.wal = header;
        self.kept.put(cached);
        Ok(())
    }

    /// With the writer's turn held: the kept snapshot is stamped as what is
    /// committed now, unless another process committed since it was read (then it
    /// is dropped, to be read afresh).
    pub(super) async fn restamp(&self) {
        let header = self.kept.wal_header();
        let version = data_version(&self.writer).await;
        self.kept.restamp(header, version);
    }

    /// `cached` when nothing else wrote the file since it was read (checked with
    /// `PRAGMA data_version` inside `tx`), else the fleet read afresh.
    pub(super) async fn fresh_snapshot(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        cached: Option<cache::CachedSnapshot>,
    ) -> Result<cache::CachedSnapshot> {
        let (data_version,): (i64,) = sqlx::query_as("PRAGMA data_version")
            .fetch_one(&mut **tx)
            .await?;
        if let Some(cached) = cached.filter(|c| c.data_version == data_version) {
            return Ok(cached);
        }
        let (rows, deployments) = self.read_all(tx).await?;
        let nodes = rows
            .into_iter()
            .map(NodeRecord::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(cache::CachedSnapshot::new(
            data_version,
            Snapshot::new(nodes, deployments),
        ))
    }

    /// Every node row and deployment, read inside `tx`.
    pub(super) async fn read_all(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
    ) -> Result<(Vec<NodeRow>, Vec<Deployment>)> {
        read_fleet!(tx, self.secrets.as_ref())
    }

    pub(super) async fn write_deployment(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        d: &Deployment,
    ) -> Result<()> {
        upsert_deployment!(d, self.secrets.as_ref())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
