//! The SQLite backend: one writer connection (SQLite allows one writer at a time, so
//! queueing in the pool beats "database is locked") and a pool of readers, in WAL mode.

mod cache;
mod freshness;
mod group_commit;
mod shared;
mod snapshot;
mod tokens;
mod wal_index;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::access_memo::AccessMemo;
use super::rows::{DeploymentRow, NodeRow, encode_json};
use super::{
    AccessStore, ClusterChange, Dump, NodeExport, NodeUpsert, SharedChange, Snapshot, SqliteTarget,
    Store, StoreOptions,
};
use crate::model::{Deployment, NodeMetrics, NodeRecord, NodeUpdate};
use crate::secrets::Secrets;
use crate::{Error, Result};

/// How long a statement waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite database file (or memory) behind the [`Store`] trait.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    secrets: Option<Secrets>,
    /// The writer's turn: every write holds it, so writes and `kept` stay in step.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The fleet as the last transaction left it, for decisions and reads.
    kept: Arc<cache::KeptSnapshot>,
    /// Registrations waiting to share the next commit.
    upserts: Arc<group_commit::UpsertQueue>,
    /// Changes waiting to share the next transaction.
    shared: Arc<crate::store::shared::SharedQueue>,
    /// Node tokens by hash, so that heartbeats are authenticated without a query.
    tokens: Arc<tokens::TokenCache>,
    /// Whether a read reads the fleet into `kept` when it is not there.
    fleet_in_memory: bool,
    /// Users and API tokens as last read, so that requests authenticate without a
    /// query.
    access: Arc<AccessMemo>,
    /// When `tokens` and `access` may be trusted.
    stamp: Arc<freshness::CredentialStamp>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and applies the embedded migrations
    /// (or, with `options.migrate` off, checks that they were applied).
    pub async fn open(target: SqliteTarget, options: &StoreOptions) -> Result<Self> {
        // synchronous=FULL: a commit is on disk before it is acknowledged, so a 2xx
        // survives power loss too, not only a crash of the process.
        let base = SqliteConnectOptions::new()
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let store = match target {
            SqliteTarget::Memory => {
                let store_options = options;
                let options = SqliteConnectOptions::from_str("sqlite::memory:")?
                    .foreign_keys(true)
                    .busy_timeout(BUSY_TIMEOUT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .acquire_timeout(store_options.acquire_timeout)
                    .connect_with(options)
                    .await?;
                Self {
                    writer: pool.clone(),
                    reader: pool,
                    secrets: store_options.secrets.clone(),
                    turn: Arc::default(),
                    kept: Arc::new(cache::KeptSnapshot::new(wal_index::WalIndex::Memory)),
                    upserts: Arc::default(),
                    shared: Arc::default(),
                    tokens: Arc::default(),
                    fleet_in_memory: store_options.fleet_in_memory,
                    access: Arc::default(),
                    stamp: Arc::default(),
                }
            }
            SqliteTarget::File(path) => {
                let cannot_open = |err: sqlx::Error| {
                    Error::Unavailable(format!(
                        "cannot open SQLite database {}: {err}",
                        path.display()
                    ))
                };
                make_private(&path)?;
                // one connection for good: its PRAGMA data_version is how commits by
                // other processes are noticed
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(base.clone().filename(&path).create_if_missing(true))
                    .await
                    .map_err(cannot_open)?;
                let reader = SqlitePoolOptions::new()
                    .max_connections(options.pool_size.clamp(1, 64))
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(base.filename(&path).read_only(true))
                    .await
                    .map_err(cannot_open)?;
                Self {
                    writer,
                    reader,
                    secrets: options.secrets.clone(),
                    turn: Arc::default(),
                    kept: Arc::new(cache::KeptSnapshot::new(wal_index::WalIndex::of_file(
                        &path,
                    ))),
                    upserts: Arc::default(),
                    shared: Arc::default(),
                    tokens: Arc::default(),
                    fleet_in_memory: options.fleet_in_memory,
                    access: Arc::default(),
                    stamp: Arc::default(),
                }
            }
        };
        let migrator = sqlx::migrate!("migrations/sqlite");
        if options.migrate {
            migrator.run(&store.writer).await?;
        } else {
            super::migrations::check_applied(&store.writer, &migrator).await?;
        }
        Ok(store)
    }
}

/// Creates the database file `0600` when it is missing (SQLite then creates its
/// `-wal` and `-shm` with the same mode), and takes group and other access away
/// from the three when an older install left them readable: they hold password
/// hashes, token hashes and sealed secrets.
fn make_private(path: &std::path::Path) -> Result<()> {
    let failed = |err: std::io::Error| {
        Error::Unavailable(format!(
            "cannot create SQLite database {}: {err}",
            path.display()
        ))
    };
    match crate::private_file::create_new(path) {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(failed(err)),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        let file = std::path::PathBuf::from(name);
        if crate::private_file::restrict(&file).map_err(failed)? {
            tracing::warn!(path = %file.display(), "database file was readable by others; made it private (0600)");
        }
    }
    Ok(())
}

impl SqliteStore {
    fn access_memo(&self) -> Option<&AccessMemo> {
        self.check_credentials();
        Some(&self.access)
    }
}

impl_access_store!(
    SqliteStore,
    writer = writer,
    reader = reader,
    begin = begin_exclusive,
    memo = access_memo
);

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
        self.kept.clear();
    }

    async fn upsert_node(&self, node: NodeUpsert<'_>) -> Result<Option<String>> {
        let (queued, answer) = group_commit::QueuedUpsert::new(&node)?;
        self.upserts.push(queued);
        let store = self.clone();
        self.answered_or_commit(answer, |turn| async move {
            let _turn = turn;
            store.upserts.commit(&store).await;
        })
        .await
        .ok_or_else(|| Error::Unavailable("the registration was dropped".into()))?
    }

    async fn nodes_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<NodeRecord>> {
        if let Some(page) = self.in_memory(|s| s.nodes_page(after, limit)) {
            return Ok(page);
        }
        sqlx::query_as::<_, NodeRow>(nodes_page_query!())
            .bind(after.unwrap_or_default())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(NodeRecord::try_from)
            .collect()
    }

    async fn deployments_page(
        &self,
        after: Option<&crate::model::page::DeploymentKey>,
        limit: usize,
    ) -> Result<Vec<Deployment>> {
        if let Some(page) = self.in_memory(|s| s.deployments_page(after, limit)) {
            return Ok(page);
        }
        let rows = sqlx::query_as::<_, DeploymentRow>(deployments_page_query!())
            .bind(after.map_or(f64::NEG_INFINITY, |k| k.created_at))
            .bind(after.map_or("", |k| k.deployment_id.as_str()))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await?;
        super::rows::into_deployments(rows, self.secrets.as_ref())
    }

    async fn get_node(&self, id: &str) -> Result<Option<NodeRecord>> {
        if let Some(node) = self.in_memory(|s| s.node(id).cloned()) {
            return Ok(node);
        }
        let sql = concat!("SELECT ", node_columns!(), " FROM nodes WHERE id = ?");
        sqlx::query_as::<_, NodeRow>(sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .map(NodeRecord::try_from)
            .transpose()
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>> {
        if let Some(nodes) = self.in_memory(Snapshot::nodes_by_name) {
            return Ok(nodes);
        }
        let sql = concat!("SELECT ", node_columns!(), " FROM nodes ORDER BY name");
        sqlx::query_as::<_, NodeRow>(sql)
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(NodeRecord::try_from)
            .collect()
    }

    async fn node_by_token_hash(&self, token_hash: &str) -> Result<Option<(String, f64)>> {
        self.check_credentials();
        if let Some(known) = self.tokens.get(token_hash) {
            return Ok(Some(known));
        }
        let generation = self.tokens.generation();
        let row: Option<(String, f64)> =
            sqlx::query_as("SELECT id, last_seen FROM nodes WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await?;
        if let Some((id, last_seen)) = &row {
            self.tokens.remember(generation, token_hash, id, *last_seen);
        }
        Ok(row)
    }

    async fn record_heartbeats(&self, batch: &[(String, NodeMetrics)]) -> Result<()> {
        let _turn = self.turn.lock().await;
        let mut tx = self.writer.begin().await?;
        for (node_id, metrics) in batch {
            sqlx::query(
                "UPDATE nodes SET last_seen = ?, metrics = ? WHERE id = ? AND last_seen < ?",
            )
            .bind(metrics.reported_at)
            .bind(encode_json(metrics)?)
            .bind(node_id)
            .bind(metrics.reported_at)
            .execute(&mut *tx)
            .await?;
        }
        let commit = self.commit_own(tx).await?;
        self.kept.patch(commit, |cached| cached.heartbeats(batch));
        for (node_id, metrics) in batch {
            self.tokens.seen(node_id, metrics.reported_at);
        }
        Ok(())
    }

    async fn record_heartbeat(&self, node_id: &str, metrics: &NodeMetrics) -> Result<Option<f64>> {
        let _turn = self.turn.lock().await;
        let mut tx = self.writer.begin().await?;
        let previous: Option<(f64,)> = sqlx::query_as("SELECT last_seen FROM nodes WHERE id = ?")
            .bind(node_id)
            .fetch_optional(&mut *tx)
            .await?;
        if previous.is_some() {
            sqlx::query("UPDATE nodes SET last_seen = ?, metrics = ? WHERE id = ?")
                .bind(metrics.reported_at)
                .bind(encode_json(metrics)?)
                .bind(node_id)
                .execute(&mut *tx)
                .await?;
            let commit = self.commit_own(tx).await?;
            (self.kept).patch(commit, |cached| cached.heartbeat(node_id, metrics));
            self.tokens.seen(node_id, metrics.reported_at);
        }
        Ok(previous.map(|p| p.0))
    }

    async fn update_node(&self, id: &str, update: &NodeUpdate) -> Result<bool> {
        let _turn = self.turn.lock().await;
        let tags = update.tags.as_ref().map(encode_json).transpose()?;
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE nodes SET schedulable = COALESCE(?, schedulable), tags = COALESCE(?, tags) \
             WHERE id = ?",
        )
        .bind(update.schedulable)
        .bind(tags)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // also after a failure: whether it committed is unknown
        let commit = (self.commit_own(tx).await).inspect_err(|_| self.kept.clear())?;
        let updated = done.rows_affected() == 1;
        self.kept.patch(commit, |cached| {
            if updated {
                cached.update_node(id, update);
            }
        });
        Ok(updated)
    }

    async fn delete_node(&self, id: &str) -> Result<bool> {
        let _turn = self.turn.lock().await;
        self.kept.clear();
        let done = sqlx::query("DELETE FROM nodes WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await;
        // also after a failure: whether the delete committed is unknown
        self.tokens.forget_node(id);
        Ok(done?.rows_affected() == 1)
    }

    async fn reservations(&self) -> Result<Vec<crate::placement::Reservation>> {
        if let Some(reservations) = self.in_memory(Snapshot::reservations) {
            return Ok(reservations);
        }
        let rows: Vec<super::rows::ReservationRow> = sqlx::query_as(reservations_query!())
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(super::rows::reservation).collect()
    }

    async fn reservations_on_nodes(
        &self,
        node_ids: &[String],
    ) -> Result<Vec<crate::placement::Reservation>> {
        let from_memory = self.in_memory(|s| {
            node_ids
                .iter()
                .flat_map(|id| s.reservations_on(id))
                .collect()
        });
        if let Some(reservations) = from_memory {
            return Ok(reservations);
        }
        let rows: Vec<super::rows::ReservationRow> = sqlx::query_as(reservations_on_nodes_query!(
            "node_id IN (SELECT value FROM json_each($1))"
        ))
        .bind(encode_json(&node_ids)?)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(super::rows::reservation).collect()
    }

    async fn fleet_version(&self) -> Option<u64> {
        self.in_memory(Snapshot::changes)
    }

    async fn has_waiting_deployments(&self) -> Result<bool> {
        if let Some(waiting) = self.in_memory(Snapshot::has_waiting) {
            return Ok(waiting);
        }
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT 1 FROM deployments \
             WHERE status IN ('pending', 'lost') LIMIT 1) AS waiting",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(waiting > 0)
    }

    async fn deployments_of_node(&self, node_id: &str) -> Result<Vec<Deployment>> {
        let sql = concat!(
            "SELECT ",
            deployment_columns!(),
            " FROM deployments WHERE node_id = ? OR previous_node_id = ? \
             ORDER BY created_at, deployment_id"
        );
        sqlx::query_as::<_, DeploymentRow>(sql)
            .bind(node_id)
            .bind(node_id)
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|row| row.into_deployment(self.secrets.as_ref()))
            .collect()
    }

    async fn get_deployment(&self, id: &str) -> Result<Option<Deployment>> {
        if let Some(deployment) = self.in_memory(|s| s.find(id).cloned()) {
            return Ok(deployment);
        }
        let sql = concat!(
            "SELECT ",
            deployment_columns!(),
            " FROM deployments WHERE deployment_id = ?"
        );
        sqlx::query_as::<_, DeploymentRow>(sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .map(|row| row.into_deployment(self.secrets.as_ref()))
            .transpose()
    }

    async fn list_deployments(&self) -> Result<Vec<Deployment>> {
        if let Some(deployments) = self.in_memory(|s| s.deployments().to_vec()) {
            return Ok(deployments);
        }
        let sql = concat!(
            "SELECT ",
            deployment_columns!(),
            " FROM deployments ORDER BY created_at, deployment_id"
        );
        sqlx::query_as::<_, DeploymentRow>(sql)
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|row| row.into_deployment(self.secrets.as_ref()))
            .collect()
    }

    async fn transact(&self, change: ClusterChange<'_>) -> Result<Vec<Deployment>> {
        let _turn = self.turn.lock().await;
        // IMMEDIATE takes the write lock before reading, so the snapshot cannot go
        // stale even if another process writes the same file.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let cached = self.fresh_snapshot(&mut tx, self.kept.take()).await?;
        let writes = change(&cached.snapshot);
        // a failure from here on leaves the cache empty: it is read again next time
        let writes = match writes {
            Ok(writes) => writes,
            Err(err) => {
                self.kept.put(cached);
                return Err(err);
            }
        };
        for deployment in &writes {
            self.write_deployment(&mut tx, deployment).await?;
        }
        // the snapshot was what is committed when the write lock was taken, and
        // nothing else commits while it is held
        let commit = self.commit_own(tx).await?;
        let mut cached = cached;
        cached.apply(&writes);
        cached.wal = commit.header_after();
        self.kept.put(cached);
        Ok(writes)
    }

    async fn transact_shared(&self, change: SharedChange) -> Result<Vec<Deployment>> {
        let (job, answer) = crate::store::shared::SharedJob::new(change);
        self.shared.push(job);
        let store = self.clone();
        self.answered_or_commit(answer, |turn| async move { store.run_shared(turn).await })
            .await
            .ok_or_else(|| Error::Unavailable("the change was dropped".into()))?
    }

    async fn export(&self) -> Result<Dump> {
        let mut tx = self.writer.begin().await?;
        let (records, deployments) = self.read_all(&mut tx).await?;
        let hashes: Vec<(String, String)> = sqlx::query_as("SELECT id, token_hash FROM nodes")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let nodes = super::rows::with_token_hashes(records, hashes)?;
        let access = self.export_access().await?;
        Ok(Dump {
            nodes,
            deployments,
            access,
        })
    }

    async fn import(&self, dump: &Dump) -> Result<()> {
        let _turn = self.turn.lock().await;
        self.kept.clear();
        self.access.changed();
        self.tokens.clear();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let (nodes, deployments): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM nodes), (SELECT COUNT(*) FROM deployments)",
        )
        .fetch_one(&mut *tx)
        .await?;
        if nodes + deployments > 0 {
            return Err(Error::Conflict(format!(
                "the target database is not empty ({nodes} nodes, {deployments} deployments)"
            )));
        }
        for NodeExport { record, token_hash } in &dump.nodes {
            sqlx::query(
                "INSERT INTO nodes (id, name, ip, capabilities, tags, token_hash, registered_at, \
                 last_seen, metrics, schedulable) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&record.id)
            .bind(&record.name)
            .bind(&record.ip)
            .bind(encode_json(&record.capabilities)?)
            .bind(encode_json(&record.tags)?)
            .bind(token_hash)
            .bind(record.registered_at)
            .bind(record.last_seen)
            .bind(record.metrics.as_ref().map(encode_json).transpose()?)
            .bind(record.schedulable)
            .execute(&mut *tx)
            .await?;
        }
        for deployment in &dump.deployments {
            self.write_deployment(&mut tx, deployment).await?;
        }
        import_access!(&mut tx, self.secrets.as_ref(), dump.access);
        tx.commit().await?;
        Ok(())
    }
}
