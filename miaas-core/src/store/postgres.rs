//! The PostgreSQL backend: how several server replicas share one database.
//!
//! Every decision that books resources ([`Store::transact`]: placement, updates,
//! sweeps) runs in a transaction that first takes one cluster-wide transaction-level
//! advisory lock, so decisions from all replicas serialize exactly as they do on
//! SQLite's single writer: each one reads the state the previous one committed.
//! The lock is released by commit or rollback, also when a replica dies mid-way.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::rows::{DeploymentRow, NodeRow, encode_json, with_token_hashes};
use super::shared::{Answer, SharedJob, SharedQueue, answer_all};
use super::url::redact_url;
use super::{
    AccessStore, ClusterChange, Dump, FleetListener, NodeExport, NodeUpsert, SharedChange,
    Snapshot, Store, StoreOptions,
};
use crate::model::{Deployment, NodeMetrics, NodeRecord, NodeUpdate};
use crate::secrets::Secrets;
use crate::{Error, Result};

/// Key of the advisory lock that serializes placement decisions ("MIaaS" in hex).
const PLACEMENT_LOCK: i64 = 0x004d_4961_6153;

/// A PostgreSQL database behind the [`Store`] trait.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    secrets: Option<Secrets>,
    /// Decisions waiting to share this replica's next transaction.
    shared: Arc<SharedQueue>,
    /// Held by the task that runs the shared transaction.
    leader: Arc<tokio::sync::Mutex<()>>,
}

/// The channel every replica's writes of deployments are announced on.
const FLEET_CHANNEL: &str = "miaas_fleet";

impl PostgresStore {
    /// Connects (lazily: a database that is down now is retried on use) and applies
    /// the embedded migrations (or checks them, with `options.migrate` off).
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|err| Error::DatabaseUrl(format!("{}: {err}", redact_url(url))))?;
        if let Some(timeout) = options.statement_timeout {
            connect = connect.options([("statement_timeout", format!("{}", timeout.as_millis()))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|err| {
                Error::Unavailable(format!("cannot connect to {}: {err}", redact_url(url)))
            })?;
        let migrator = sqlx::migrate!("migrations/postgres");
        if options.migrate {
            migrator.run(&pool).await?;
        } else {
            super::migrations::check_applied(&pool, &migrator).await?;
        }
        Ok(Self {
            pool,
            secrets: options.secrets.clone(),
            shared: Arc::default(),
            leader: Arc::default(),
        })
    }

    /// Announces a write to every replica (delivered when `tx` commits): the
    /// `nodes` it concerns, comma-separated, or `*` when too many to name.
    async fn announce(
        tx: &mut Transaction<'_, Postgres>,
        nodes: &std::collections::BTreeSet<String>,
    ) -> Result<()> {
        let mut payload = nodes
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(",");
        if payload.len() > 7_000 {
            payload = "*".into();
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(FLEET_CHANNEL)
            .bind(payload)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Listens on [`FLEET_CHANNEL`] until the pool closes, telling `on_change`
    /// which nodes each notification names (every node after a reconnection: one
    /// may have been missed).
    async fn listen(pool: PgPool, on_change: FleetListener) {
        while !pool.is_closed() {
            let listener = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen(FLEET_CHANNEL).await?;
                on_change(None);
                loop {
                    let notification = listener.recv().await?;
                    match notification.payload() {
                        "*" => on_change(None),
                        "" => {}
                        nodes => {
                            let nodes: Vec<String> = nodes.split(',').map(str::to_string).collect();
                            on_change(Some(&nodes));
                        }
                    }
                }
            };
            let ended: std::result::Result<(), sqlx::Error> = listener.await;
            if let Err(err) = ended {
                tracing::debug!(error = %err, "fleet listener interrupted; listening again");
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    async fn write_deployment(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        d: &Deployment,
    ) -> Result<()> {
        upsert_deployment!(d, self.secrets.as_ref())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Runs the queued decisions until none is left: each batch is one transaction
    /// under the advisory lock, over one read of the fleet that each decision's
    /// writes are laid over for the next.
    async fn run_shared(&self) {
        loop {
            let batch = self.shared.take();
            if batch.is_empty() {
                return;
            }
            let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
            let outcome: Result<()> = async {
                let mut tx = self.begin_exclusive().await?;
                let (rows, deployments) = self.read_all(&mut tx).await?;
                let nodes = rows
                    .into_iter()
                    .map(NodeRecord::try_from)
                    .collect::<Result<Vec<_>>>()?;
                let mut snapshot = Snapshot::new(nodes, deployments);
                let mut touched = std::collections::BTreeSet::new();
                for job in &batch {
                    match job.decide(&snapshot) {
                        Ok(writes) => {
                            for deployment in &writes {
                                self.write_deployment(&mut tx, deployment).await?;
                            }
                            snapshot.apply(&writes);
                            touched.extend(nodes_of(&writes));
                            answers.push(Ok(writes));
                        }
                        Err(err) => answers.push(Err(err)),
                    }
                }
                if !touched.is_empty() {
                    Self::announce(&mut tx, &touched).await?;
                }
                tx.commit().await?;
                Ok(())
            }
            .await;
            answer_all(batch, answers, &outcome);
        }
    }

    /// A transaction holding the cluster-wide advisory lock.
    async fn begin_exclusive(&self) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PLACEMENT_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn read_all(
        &self,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(Vec<NodeRow>, Vec<Deployment>)> {
        read_fleet!(tx, self.secrets.as_ref())
    }
}

/// Creates schema `schema` in the database at `url` (if missing) and returns a URL
/// whose connections work inside it: isolated installs, or tests, on one database.
pub async fn schema_url(url: &str, schema: &str) -> Result<String> {
    if schema.is_empty()
        || !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::Invalid(format!(
            "schema name {schema:?}: letters, digits, _ only"
        )));
    }
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(|err| {
            Error::Unavailable(format!("cannot connect to {}: {err}", redact_url(url)))
        })?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}"
    )))
    .execute(&pool)
    .await?;
    pool.close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{url}{separator}options=-c%20search_path%3D{schema}"
    ))
}

/// The nodes `writes` concern: where they are placed, and where they moved from.
fn nodes_of(writes: &[Deployment]) -> std::collections::BTreeSet<String> {
    writes
        .iter()
        .flat_map(|d| [d.node_id.clone(), d.previous_node_id.clone()])
        .flatten()
        .collect()
}

impl PostgresStore {
    /// None: a revocation on another replica must hold here at once.
    fn access_memo(&self) -> Option<&super::access_memo::AccessMemo> {
        None
    }
}

impl_access_store!(
    PostgresStore,
    writer = pool,
    reader = pool,
    begin = begin_exclusive,
    memo = access_memo
);

#[async_trait]
impl Store for PostgresStore {
    fn listen_fleet(&self, on_change: FleetListener) {
        tokio::spawn(Self::listen(self.pool.clone(), on_change));
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn upsert_node(&self, node: NodeUpsert<'_>) -> Result<Option<String>> {
        let id: Option<(String,)> = sqlx::query_as(super::UPSERT_NODE_SQL)
            .bind(node.new_id)
            .bind(node.name)
            .bind(node.ip)
            .bind(encode_json(node.capabilities)?)
            .bind(encode_json(&node.tags)?)
            .bind(node.token_hash)
            .bind(node.now)
            .bind(node.only_new)
            .fetch_optional(&self.pool)
            .await?;
        Ok(id.map(|(id,)| id))
    }

    async fn nodes_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<NodeRecord>> {
        sqlx::query_as::<_, NodeRow>(nodes_page_query!())
            .bind(after.unwrap_or_default())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
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
        let rows = sqlx::query_as::<_, DeploymentRow>(deployments_page_query!())
            .bind(after.map_or(f64::NEG_INFINITY, |k| k.created_at))
            .bind(after.map_or("", |k| k.deployment_id.as_str()))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        super::rows::into_deployments(rows, self.secrets.as_ref())
    }

    async fn get_node(&self, id: &str) -> Result<Option<NodeRecord>> {
        let sql = concat!("SELECT ", node_columns!(), " FROM nodes WHERE id = $1");
        sqlx::query_as::<_, NodeRow>(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(NodeRecord::try_from)
            .transpose()
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>> {
        let sql = concat!("SELECT ", node_columns!(), " FROM nodes ORDER BY name");
        sqlx::query_as::<_, NodeRow>(sql)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(NodeRecord::try_from)
            .collect()
    }

    async fn update_node(&self, id: &str, update: &NodeUpdate) -> Result<bool> {
        let tags = update.tags.as_ref().map(encode_json).transpose()?;
        let done = sqlx::query(
            "UPDATE nodes SET schedulable = COALESCE($1, schedulable), \
             tags = COALESCE($2, tags) WHERE id = $3",
        )
        .bind(update.schedulable)
        .bind(tags)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_node(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn node_by_token_hash(&self, token_hash: &str) -> Result<Option<(String, f64)>> {
        let row: Option<(String, f64)> =
            sqlx::query_as("SELECT id, last_seen FROM nodes WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row)
    }

    async fn record_heartbeats(&self, batch: &[(String, NodeMetrics)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (node_id, metrics) in batch {
            sqlx::query(
                "UPDATE nodes SET last_seen = $1, metrics = $2 WHERE id = $3 AND last_seen < $4",
            )
            .bind(metrics.reported_at)
            .bind(encode_json(metrics)?)
            .bind(node_id)
            .bind(metrics.reported_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_heartbeat(&self, node_id: &str, metrics: &NodeMetrics) -> Result<Option<f64>> {
        // The old value comes from the row as it was before this statement.
        let previous: Option<(f64,)> = sqlx::query_as(
            "UPDATE nodes SET last_seen = $1, metrics = $2 \
             FROM (SELECT id, last_seen AS before FROM nodes WHERE id = $3 FOR UPDATE) old \
             WHERE nodes.id = old.id RETURNING old.before",
        )
        .bind(metrics.reported_at)
        .bind(encode_json(metrics)?)
        .bind(node_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(previous.map(|p| p.0))
    }

    async fn get_deployment(&self, id: &str) -> Result<Option<Deployment>> {
        let sql = concat!(
            "SELECT ",
            deployment_columns!(),
            " FROM deployments WHERE deployment_id = $1"
        );
        sqlx::query_as::<_, DeploymentRow>(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.into_deployment(self.secrets.as_ref()))
            .transpose()
    }

    async fn list_deployments(&self) -> Result<Vec<Deployment>> {
        let sql = concat!(
            "SELECT ",
            deployment_columns!(),
            " FROM deployments ORDER BY created_at, deployment_id"
        );
        sqlx::query_as::<_, DeploymentRow>(sql)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| row.into_deployment(self.secrets.as_ref()))
            .collect()
    }

    async fn reservations(&self) -> Result<Vec<crate::placement::Reservation>> {
        let rows: Vec<super::rows::ReservationRow> = sqlx::query_as(reservations_query!())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(super::rows::reservation).collect()
    }

    async fn reservations_on_nodes(
        &self,
        node_ids: &[String],
    ) -> Result<Vec<crate::placement::Reservation>> {
        let rows: Vec<super::rows::ReservationRow> =
            sqlx::query_as(reservations_on_nodes_query!("node_id = ANY($1)"))
                .bind(node_ids)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(super::rows::reservation).collect()
    }

    async fn has_waiting_deployments(&self) -> Result<bool> {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT 1 FROM deployments \
             WHERE status IN ('pending', 'lost') LIMIT 1) AS waiting",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(waiting > 0)
    }

    async fn deployments_of_node(&self, node_id: &str) -> Result<Vec<Deployment>> {
        let sql = concat!(
            "SELECT ",
            deployment_columns!(),
            " FROM deployments WHERE node_id = $1 OR previous_node_id = $1 \
             ORDER BY created_at, deployment_id"
        );
        sqlx::query_as::<_, DeploymentRow>(sql)
            .bind(node_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| row.into_deployment(self.secrets.as_ref()))
            .collect()
    }

    async fn transact(&self, change: ClusterChange<'_>) -> Result<Vec<Deployment>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PLACEMENT_LOCK)
            .execute(&mut *tx)
            .await?;
        let (rows, deployments) = self.read_all(&mut tx).await?;
        let nodes = rows
            .into_iter()
            .map(NodeRecord::try_from)
            .collect::<Result<Vec<_>>>()?;
        let writes = change(&Snapshot::new(nodes, deployments))?;
        for deployment in &writes {
            self.write_deployment(&mut tx, deployment).await?;
        }
        if !writes.is_empty() {
            Self::announce(&mut tx, &nodes_of(&writes)).await?;
        }
        tx.commit().await?;
        Ok(writes)
    }

    async fn transact_shared(&self, change: SharedChange) -> Result<Vec<Deployment>> {
        let (job, answer) = SharedJob::new(change);
        self.shared.push(job);
        // one task per replica runs what is queued, in a task of its own so that a
        // caller that goes away cannot cut it short
        let leader = self.leader.clone().lock_owned().await;
        let store = self.clone();
        let _ = tokio::spawn(async move {
            let _leader = leader;
            store.run_shared().await;
        })
        .await;
        answer
            .await
            .map_err(|_| Error::Unavailable("the change was dropped".into()))?
    }

    async fn export(&self) -> Result<Dump> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
        let (rows, deployments) = self.read_all(&mut tx).await?;
        let hashes: Vec<(String, String)> = sqlx::query_as("SELECT id, token_hash FROM nodes")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Dump {
            nodes: with_token_hashes(rows, hashes)?,
            deployments,
            access: self.export_access().await?,
        })
    }

    async fn import(&self, dump: &Dump) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PLACEMENT_LOCK)
            .execute(&mut *tx)
            .await?;
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
                 last_seen, metrics, schedulable) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
