//! The SQLite backend: one writer connection (SQLite allows one writer at a time, so
//! queueing in the pool beats "database is locked") and a pool of readers, in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::rows::{DeploymentRow, NodeRow, StoredNodeRow, encode_json};
use super::version::{
    BUMP_NODES_REMOVED_SQL, BUMP_VERSION_SQL, NODE_IDS_SQL, READ_VERSION_SQL, VersionRow,
};
use super::{
    AccessStore, ClusterVersion, Decided, Decider, Dump, FleetChanges, NodeExport, NodeUpsert,
    SqliteTarget, Store, StoreOptions,
};
use crate::model::{Deployment, NodeMetrics, NodeRecord, NodeUpdate};
use crate::secrets::Secrets;
use crate::{Error, Result};

/// How long a statement waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite database file (or memory) behind the [`Store`] trait. It holds SQL
/// only; what a server keeps in memory is the fleet cache's
/// ([`crate::fleet::FleetCache`]).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    secrets: Option<Secrets>,
    /// Users, API tokens and cluster secrets.
    access: super::access::SqlAccess<Sqlite>,
    /// The lock on the file: a server owns it (nothing else writes it), a local
    /// command shares it (no server starts meanwhile). `None` when no lock file
    /// could be made.
    owner: Option<std::sync::Arc<super::owner::OwnerLock>>,
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
                    access: super::access::SqlAccess {
                        writer: pool.clone(),
                        reader: pool.clone(),
                        secrets: store_options.secrets.clone(),
                        begin: "BEGIN IMMEDIATE",
                    },
                    writer: pool.clone(),
                    reader: pool,
                    secrets: store_options.secrets.clone(),
                    // no other process can open an in-memory database
                    owner: Some(std::sync::Arc::new(super::owner::OwnerLock::memory())),
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
                let owner = match &options.owner {
                    Some(url) => Some(std::sync::Arc::new(super::owner::OwnerLock::take(
                        &path, url,
                    )?)),
                    None => super::owner::OwnerLock::use_locally(&path)?.map(std::sync::Arc::new),
                };
                // one writer: SQLite allows one at a time, and queueing in the pool
                // beats "database is locked"
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
                    access: super::access::SqlAccess {
                        writer: writer.clone(),
                        reader: reader.clone(),
                        secrets: options.secrets.clone(),
                        begin: "BEGIN IMMEDIATE",
                    },
                    writer,
                    reader,
                    secrets: options.secrets.clone(),
                    owner,
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
    /// A write transaction that holds SQLite's write lock from its first statement.
    async fn begin_exclusive(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A write transaction that has added one to the cluster version (with
    /// `bump`), and that version.
    async fn begin_write(
        &self,
        bump: &'static str,
    ) -> Result<(Transaction<'static, Sqlite>, ClusterVersion)> {
        let mut tx = self.begin_exclusive().await?;
        let row: VersionRow = sqlx::query_as(bump).fetch_one(&mut *tx).await?;
        Ok((tx, ClusterVersion::from_row(row)))
    }

    /// What changed after `since`, up to `version`, read inside `tx`.
    async fn read_changes(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        since: u64,
        version: ClusterVersion,
    ) -> Result<FleetChanges> {
        let since_row = i64::try_from(since).unwrap_or(i64::MAX);
        let nodes = sqlx::query_as::<_, StoredNodeRow>(super::sql::NODES_SINCE_SQL)
            .bind(since_row)
            .fetch_all(&mut **tx)
            .await?;
        let node_ids = if since > 0 && version.nodes_removed_at > since {
            let ids: Vec<(String,)> = sqlx::query_as(NODE_IDS_SQL).fetch_all(&mut **tx).await?;
            Some(ids.into_iter().map(|(id,)| id).collect())
        } else {
            None
        };
        let rows = sqlx::query_as::<_, DeploymentRow>(super::sql::DEPLOYMENTS_SINCE_SQL)
            .bind(since_row)
            .fetch(&mut **tx);
        let deployments = super::rows::decode_deployments(rows, 0, self.secrets.as_ref()).await?;
        Ok(FleetChanges {
            version,
            since,
            nodes: nodes
                .into_iter()
                .map(super::StoredNode::try_from)
                .collect::<Result<_>>()?,
            node_ids,
            deployments,
        })
    }

    async fn write_deployment(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        d: &Deployment,
        version: u64,
    ) -> Result<()> {
        sqlx::query(super::sql::UPSERT_DEPLOYMENT_SQL)
            .bind(&d.deployment_id)
            .bind(&d.template_id)
            .bind(&d.rendered_compose)
            .bind(super::rows::encode_env(&d.env, self.secrets.as_ref())?)
            .bind(d.action.as_str())
            .bind(d.status.as_str())
            .bind(&d.message)
            .bind(&d.node_id)
            .bind(&d.previous_node_id)
            .bind(encode_json(&d.requirements)?)
            .bind(encode_json(&d.gpu_ids)?)
            .bind(d.placement.as_ref().map(encode_json).transpose()?)
            .bind(i64::from(d.revision))
            .bind(d.created_at)
            .bind(d.updated_at)
            .bind(i64::try_from(version).unwrap_or(i64::MAX))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn read_all(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
    ) -> Result<(Vec<NodeRow>, Vec<Deployment>)> {
        let nodes_sql = super::sql::NODES_BY_NAME_SQL;
        let nodes = sqlx::query_as::<_, NodeRow>(nodes_sql)
            .fetch_all(&mut **tx)
            .await?;
        let sql = super::sql::DEPLOYMENTS_SQL;
        let rows = sqlx::query_as::<_, DeploymentRow>(sql).fetch(&mut **tx);
        let deployments = super::rows::decode_deployments(rows, 0, self.secrets.as_ref()).await?;
        Ok((nodes, deployments))
    }
}

impl super::access::WithSqlAccess for SqliteStore {
    type Db = Sqlite;

    fn sql_access(&self) -> &super::access::SqlAccess<Sqlite> {
        &self.access
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    fn exclusive(&self) -> bool {
        self.owner.as_ref().is_some_and(|owner| owner.is_owner())
    }

    async fn upsert_nodes(&self, nodes: &[NodeUpsert<'_>]) -> Result<Vec<Option<String>>> {
        let (mut tx, version) = self.begin_write(BUMP_VERSION_SQL).await?;
        let mut ids = Vec::with_capacity(nodes.len());
        for node in nodes {
            let id: Option<(String,)> = sqlx::query_as(super::sql::UPSERT_NODE_SQL)
                .bind(node.new_id)
                .bind(node.name)
                .bind(node.ip)
                .bind(encode_json(node.capabilities)?)
                .bind(encode_json(&node.tags)?)
                .bind(node.token_hash)
                .bind(node.now)
                .bind(node.only_new)
                .bind(i64::try_from(version.version).unwrap_or(i64::MAX))
                .fetch_optional(&mut *tx)
                .await?;
            ids.push(id.map(|(id,)| id));
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn nodes_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<NodeRecord>> {
        sqlx::query_as::<_, NodeRow>(super::sql::NODES_PAGE_SQL)
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
        let rows = sqlx::query_as::<_, DeploymentRow>(super::sql::DEPLOYMENTS_PAGE_SQL)
            .bind(after.map_or(f64::NEG_INFINITY, |k| k.created_at))
            .bind(after.map_or("", |k| k.deployment_id.as_str()))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await?;
        super::rows::into_deployments(rows, self.secrets.as_ref())
    }

    async fn get_node(&self, id: &str) -> Result<Option<NodeRecord>> {
        let sql = super::sql::NODE_BY_ID_SQL;
        sqlx::query_as::<_, NodeRow>(sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .map(NodeRecord::try_from)
            .transpose()
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>> {
        let sql = super::sql::NODES_BY_NAME_SQL;
        sqlx::query_as::<_, NodeRow>(sql)
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(NodeRecord::try_from)
            .collect()
    }

    async fn node_by_token_hash(&self, token_hash: &str) -> Result<Option<(String, f64)>> {
        let row: Option<(String, f64)> =
            sqlx::query_as("SELECT id, last_seen FROM nodes WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await?;
        Ok(row)
    }

    async fn record_heartbeats(&self, batch: &[(String, NodeMetrics)]) -> Result<()> {
        let (mut tx, version) = self.begin_write(BUMP_VERSION_SQL).await?;
        let version = i64::try_from(version.version).unwrap_or(i64::MAX);
        for (node_id, metrics) in batch {
            sqlx::query(super::sql::HEARTBEAT_SQL)
                .bind(metrics.reported_at)
                .bind(encode_json(metrics)?)
                .bind(version)
                .bind(node_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_heartbeat(&self, node_id: &str, metrics: &NodeMetrics) -> Result<Option<f64>> {
        let (mut tx, version) = self.begin_write(BUMP_VERSION_SQL).await?;
        let previous: Option<(f64,)> = sqlx::query_as("SELECT last_seen FROM nodes WHERE id = $1")
            .bind(node_id)
            .fetch_optional(&mut *tx)
            .await?;
        if previous.is_some() {
            sqlx::query(
                "UPDATE nodes SET last_seen = $1, metrics = $2, version = $3 WHERE id = $4",
            )
            .bind(metrics.reported_at)
            .bind(encode_json(metrics)?)
            .bind(i64::try_from(version.version).unwrap_or(i64::MAX))
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(previous.map(|p| p.0))
    }

    async fn update_node(&self, id: &str, update: &NodeUpdate) -> Result<bool> {
        let tags = update.tags.as_ref().map(encode_json).transpose()?;
        let (mut tx, version) = self.begin_write(BUMP_VERSION_SQL).await?;
        let done = sqlx::query(super::sql::UPDATE_NODE_SQL)
            .bind(update.schedulable)
            .bind(tags)
            .bind(i64::try_from(version.version).unwrap_or(i64::MAX))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_node(&self, id: &str) -> Result<bool> {
        let (mut tx, _) = self.begin_write(BUMP_NODES_REMOVED_SQL).await?;
        let done = sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn reservations(&self) -> Result<Vec<crate::placement::Reservation>> {
        let rows: Vec<super::rows::ReservationRow> = sqlx::query_as(super::sql::RESERVATIONS_SQL)
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(super::rows::reservation).collect()
    }

    async fn reservations_on_nodes(
        &self,
        node_ids: &[String],
    ) -> Result<Vec<crate::placement::Reservation>> {
        let rows: Vec<super::rows::ReservationRow> =
            sqlx::query_as(super::sql::RESERVATIONS_ON_NODES_SQLITE)
                .bind(encode_json(&node_ids)?)
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter().map(super::rows::reservation).collect()
    }

    async fn cluster_version(&self) -> Result<ClusterVersion> {
        let row: VersionRow = sqlx::query_as(READ_VERSION_SQL)
            .fetch_one(&self.reader)
            .await?;
        Ok(ClusterVersion::from_row(row))
    }

    async fn changes_since(&self, since: u64) -> Result<FleetChanges> {
        // one read transaction: one consistent state of the file
        let mut tx = self.reader.begin().await?;
        let row: VersionRow = sqlx::query_as(READ_VERSION_SQL).fetch_one(&mut *tx).await?;
        let changes = self
            .read_changes(&mut tx, since, ClusterVersion::from_row(row))
            .await?;
        tx.commit().await?;
        Ok(changes)
    }

    async fn decide(&self, known: Option<u64>, decider: Decider<'_>) -> Result<Decided> {
        let (mut tx, version) = self.begin_write(BUMP_VERSION_SQL).await?;
        let before = ClusterVersion {
            version: version.before_write(),
            ..version
        };
        let changes = match known {
            Some(known) if known != before.version => {
                self.read_changes(&mut tx, known, before).await?
            }
            _ => FleetChanges::none(before),
        };
        let writes = decider(changes)?;
        if writes.is_empty() {
            tx.rollback().await?;
            return Ok(Decided { version: before });
        }
        for deployment in &writes {
            self.write_deployment(&mut tx, deployment, version.version)
                .await?;
        }
        tx.commit().await?;
        Ok(Decided { version })
    }

    async fn has_waiting_deployments(&self) -> Result<bool> {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT 1 FROM deployments \
             WHERE status IN ('pending', 'lost') LIMIT 1) AS waiting",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(waiting > 0)
    }

    async fn deployments_of_node(&self, node_id: &str) -> Result<Vec<Deployment>> {
        let sql = super::sql::DEPLOYMENTS_OF_NODE_SQL;
        sqlx::query_as::<_, DeploymentRow>(sql)
            .bind(node_id)
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|row| row.into_deployment(self.secrets.as_ref()))
            .collect()
    }

    async fn get_deployment(&self, id: &str) -> Result<Option<Deployment>> {
        let sql = super::sql::DEPLOYMENT_BY_ID_SQL;
        sqlx::query_as::<_, DeploymentRow>(sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .map(|row| row.into_deployment(self.secrets.as_ref()))
            .transpose()
    }

    async fn list_deployments(&self) -> Result<Vec<Deployment>> {
        let sql = super::sql::DEPLOYMENTS_SQL;
        sqlx::query_as::<_, DeploymentRow>(sql)
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|row| row.into_deployment(self.secrets.as_ref()))
            .collect()
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
        let (mut tx, version) = self.begin_write(super::version::BUMP_ACCESS_SQL).await?;
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
            sqlx::query(super::sql::IMPORT_NODE_SQL)
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
                .bind(i64::try_from(version.version).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
        }
        for deployment in &dump.deployments {
            self.write_deployment(&mut tx, deployment, version.version)
                .await?;
        }
        self.access.import(&mut tx, &dump.access).await?;
        tx.commit().await?;
        Ok(())
    }
}
