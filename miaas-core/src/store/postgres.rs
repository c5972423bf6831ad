//! The PostgreSQL backend: how several server replicas share one database.
//!
//! Every write first adds one to the cluster version (see `version`), whose row
//! lock it holds until it commits: decisions from all replicas serialize exactly as
//! they do on SQLite's single writer, and each reads what the previous ones
//! committed since the version its replica knows. The lock is released by commit or
//! rollback, also when a replica dies mid-way.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::rows::encode_json;
use super::tables::DecisionStart;
use super::url::redact_url;
use super::version::{BUMP_ACCESS_SQL, BUMP_NODES_REMOVED_SQL};
use super::{
    AccessStore, ClusterVersion, Committed, Decided, Decider, Dump, FleetChanges, FleetListener,
    NodeUpsert, Store, StoreOptions,
};
use crate::model::{Deployment, NodeMetrics, NodeUpdate};
use crate::secrets::Secrets;
use crate::{Error, Result};

/// A PostgreSQL database behind the [`Store`] trait.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// The pool (one, for reads and writes), with the SQL both backends share.
    tables: super::tables::SqlTables<Postgres>,
}

/// The tables both backends share, on PostgreSQL.
type Tables = super::tables::SqlTables<Postgres>;

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
            tables: super::tables::SqlTables {
                writer: pool.clone(),
                reader: pool,
                secrets: options.secrets.clone(),
                begin: "BEGIN",
            },
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

    /// Writes many deployments in one statement (the last write of each wins).
    async fn write_deployments(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        writes: &[Deployment],
        version: u64,
    ) -> Result<()> {
        let mut last: std::collections::HashMap<&str, &Deployment> =
            std::collections::HashMap::with_capacity(writes.len());
        for d in writes {
            last.insert(d.deployment_id.as_str(), d);
        }
        let mut columns = DeploymentColumns::default();
        for d in writes {
            if last
                .get(d.deployment_id.as_str())
                .is_some_and(|l| std::ptr::eq(*l, d))
            {
                columns.push(d, self.tables.secrets.as_ref())?;
            }
        }
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        sqlx::query(UPSERT_DEPLOYMENTS_SQL)
            .bind(columns.deployment_id)
            .bind(columns.template_id)
            .bind(columns.rendered_compose)
            .bind(columns.env)
            .bind(columns.action)
            .bind(columns.status)
            .bind(columns.message)
            .bind(columns.node_id)
            .bind(columns.previous_node_id)
            .bind(columns.requirements)
            .bind(columns.gpu_ids)
            .bind(columns.placement)
            .bind(columns.revision)
            .bind(columns.created_at)
            .bind(columns.updated_at)
            .bind(columns.params)
            .bind(columns.template_version)
            .bind(columns.health)
            .bind(columns.restarts)
            .bind(version)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// The upsert of many deployments at one version, as parallel arrays.
const UPSERT_DEPLOYMENTS_SQL: &str = "INSERT INTO deployments (deployment_id, template_id, \
     rendered_compose, env, action, status, message, node_id, previous_node_id, requirements, \
     gpu_ids, placement, revision, created_at, updated_at, params, template_version, health, \
     restarts, version) \
     SELECT d.*, $20 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
     $13::bigint[], $14::float8[], $15::float8[], $16::text[], $17::bigint[], $18::text[], \
     $19::bigint[]) AS d \
     ON CONFLICT (deployment_id) DO UPDATE SET template_id = excluded.template_id, \
     rendered_compose = excluded.rendered_compose, env = excluded.env, \
     action = excluded.action, status = excluded.status, message = excluded.message, \
     node_id = excluded.node_id, previous_node_id = excluded.previous_node_id, \
     requirements = excluded.requirements, gpu_ids = excluded.gpu_ids, \
     placement = excluded.placement, revision = excluded.revision, \
     updated_at = excluded.updated_at, params = excluded.params, \
     template_version = excluded.template_version, health = excluded.health, \
     restarts = excluded.restarts, version = excluded.version";

/// Deployments as the columns of [`UPSERT_DEPLOYMENTS_SQL`].
#[derive(Default)]
struct DeploymentColumns {
    deployment_id: Vec<String>,
    template_id: Vec<String>,
    rendered_compose: Vec<String>,
    env: Vec<String>,
    action: Vec<String>,
    status: Vec<String>,
    message: Vec<String>,
    node_id: Vec<Option<String>>,
    previous_node_id: Vec<Option<String>>,
    requirements: Vec<String>,
    gpu_ids: Vec<String>,
    placement: Vec<Option<String>>,
    revision: Vec<i64>,
    created_at: Vec<f64>,
    updated_at: Vec<f64>,
    params: Vec<Option<String>>,
    template_version: Vec<Option<i64>>,
    health: Vec<Option<String>>,
    restarts: Vec<i64>,
}

impl DeploymentColumns {
    fn push(&mut self, d: &Deployment, secrets: Option<&Secrets>) -> Result<()> {
        self.deployment_id.push(d.deployment_id.clone());
        self.template_id.push(d.template_id.clone());
        self.rendered_compose.push(d.rendered_compose.clone());
        self.env.push(super::rows::encode_env(&d.env, secrets)?);
        self.action.push(d.action.as_str().to_string());
        self.status.push(d.status.as_str().to_string());
        self.message.push(d.message.clone());
        self.node_id.push(d.node_id.clone());
        self.previous_node_id.push(d.previous_node_id.clone());
        self.requirements.push(encode_json(&d.requirements)?);
        self.gpu_ids.push(encode_json(&d.gpu_ids)?);
        self.placement
            .push(d.placement.as_ref().map(encode_json).transpose()?);
        self.revision.push(i64::from(d.revision));
        self.created_at.push(d.created_at);
        self.updated_at.push(d.updated_at);
        self.params
            .push(d.params.as_ref().map(encode_json).transpose()?);
        self.template_version
            .push(d.template_version.map(i64::from));
        self.health.push(d.health.map(|h| h.as_str().to_string()));
        self.restarts.push(i64::from(d.restarts));
        Ok(())
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

#[async_trait]
impl Store for PostgresStore {
    fn access(&self) -> &dyn AccessStore {
        &self.tables
    }

    fn streams(&self) -> &dyn super::StreamStore {
        &self.tables
    }

    fn templates(&self) -> &dyn super::TemplateStore {
        &self.tables
    }

    fn listen_fleet(&self, on_change: FleetListener) {
        tokio::spawn(Self::listen(self.tables.writer.clone(), on_change));
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.tables.writer).await?;
        Ok(())
    }

    async fn close(&self) {
        self.tables.writer.close().await;
    }

    async fn upsert_nodes(&self, nodes: &[NodeUpsert]) -> Result<Committed<Vec<Option<String>>>> {
        self.tables.upsert_nodes(nodes).await
    }

    async fn update_node(&self, id: &str, update: &NodeUpdate) -> Result<Committed<bool>> {
        self.tables.update_node(id, update).await
    }

    async fn delete_node(&self, id: &str) -> Result<Committed<bool>> {
        let (mut tx, version) = self.tables.begin_write(BUMP_NODES_REMOVED_SQL).await?;
        let deleted = Tables::delete_node_in(&mut tx, id).await?;
        Self::announce(&mut tx, &std::iter::once(id.to_string()).collect()).await?;
        tx.commit().await?;
        Ok(super::Committed::at(version, deleted))
    }

    async fn record_heartbeats(&self, batch: &[(String, NodeMetrics)]) -> Result<Committed<()>> {
        self.tables.record_heartbeats(batch).await
    }

    async fn cluster_version(&self) -> Result<ClusterVersion> {
        self.tables.cluster_version().await
    }

    async fn changes_since(&self, since: u64) -> Result<FleetChanges> {
        // one snapshot of the database for the version and every row
        let mut tx = self.tables.writer.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let version = Tables::version_in(&mut tx).await?;
        let changes = self.tables.read_changes(&mut tx, since, version).await?;
        tx.commit().await?;
        Ok(changes)
    }

    async fn decide(&self, known: Option<u64>, decider: Decider<'_>) -> Result<Decided> {
        let (mut tx, version, writes) = match self.tables.begin_decision(known, decider).await? {
            DecisionStart::Decided(decided) => return Ok(decided),
            DecisionStart::Write {
                tx,
                version,
                writes,
            } => (tx, version, writes),
        };
        // one statement for the whole decision: the version's lock is held briefly
        self.write_deployments(&mut tx, &writes, version.version)
            .await?;
        Self::announce(&mut tx, &nodes_of(&writes)).await?;
        tx.commit().await?;
        Ok(Decided { version })
    }

    async fn export(&self) -> Result<Dump> {
        let mut tx = self.tables.writer.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
        let (nodes, deployments) = self.tables.export_fleet(&mut tx).await?;
        tx.commit().await?;
        Ok(Dump {
            nodes,
            deployments,
            access: self.tables.export_access().await?,
            templates: self.tables.export_templates().await?,
        })
    }

    async fn import(&self, dump: &Dump) -> Result<()> {
        let (mut tx, version) = self.tables.begin_write(BUMP_ACCESS_SQL).await?;
        Tables::check_empty(&mut tx).await?;
        Tables::import_nodes(&mut tx, &dump.nodes, version.version).await?;
        for chunk in dump.deployments.chunks(10_000) {
            self.write_deployments(&mut tx, chunk, version.version)
                .await?;
        }
        self.tables.import(&mut tx, &dump.access).await?;
        Tables::import_templates(&mut tx, &dump.templates).await?;
        tx.commit().await?;
        Ok(())
    }
}
