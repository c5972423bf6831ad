//! The SQLite backend: one writer connection (SQLite allows one writer at a time, so
//! queueing in the pool beats "database is locked") and a pool of readers, in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

use super::rows::encode_json;
use super::tables::DecisionStart;
use super::version::BUMP_NODES_REMOVED_SQL;
use super::{
    AccessStore, ClusterVersion, Committed, Decided, Decider, Dump, FleetChanges, NodeUpsert,
    SqliteTarget, Store, StoreOptions,
};
use crate::model::{Deployment, DeploymentHealth, NodeMetrics, NodeUpdate};
use crate::{Error, Result};

/// The tables both backends share, on SQLite.
type Tables = super::tables::SqlTables<Sqlite>;

/// How long a statement waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite database file (or memory) behind the [`Store`] trait. It holds SQL
/// only; what the service keeps in memory is the fleet state's
/// ([`crate::fleet::Fleet`]).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The pools, with the SQL both backends share.
    tables: super::tables::SqlTables<Sqlite>,
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
                    tables: super::tables::SqlTables {
                        writer: pool.clone(),
                        reader: pool,
                        secrets: store_options.secrets.clone(),
                        begin: "BEGIN IMMEDIATE",
                    },
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
                    tables: super::tables::SqlTables {
                        writer,
                        reader,
                        secrets: options.secrets.clone(),
                        begin: "BEGIN IMMEDIATE",
                    },
                    owner,
                }
            }
        };
        let migrator = sqlx::migrate!("migrations/sqlite");
        if options.migrate {
            migrator.run(&store.tables.writer).await?;
        } else {
            super::migrations::check_applied(&store.tables.writer, &migrator).await?;
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
            .bind(super::rows::encode_env(
                &d.env,
                self.tables.secrets.as_ref(),
            )?)
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
            .bind(d.params.as_ref().map(encode_json).transpose()?)
            .bind(d.template_version.map(i64::from))
            .bind(d.health.map(DeploymentHealth::as_str))
            .bind(i64::from(d.restarts))
            .bind(i64::try_from(version).unwrap_or(i64::MAX))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn access(&self) -> &dyn AccessStore {
        &self.tables
    }

    fn streams(&self) -> &dyn super::StreamStore {
        &self.tables
    }

    fn templates(&self) -> &dyn super::TemplateStore {
        &self.tables
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.tables.reader).await?;
        Ok(())
    }

    async fn close(&self) {
        self.tables.reader.close().await;
        self.tables.writer.close().await;
    }

    fn exclusive(&self) -> bool {
        self.owner.as_ref().is_some_and(|owner| owner.is_owner())
    }

    async fn upsert_nodes(&self, nodes: &[NodeUpsert]) -> Result<Committed<Vec<Option<String>>>> {
        self.tables.upsert_nodes(nodes).await
    }

    async fn record_heartbeats(&self, batch: &[(String, NodeMetrics)]) -> Result<Committed<()>> {
        self.tables.record_heartbeats(batch).await
    }

    async fn update_node(&self, id: &str, update: &NodeUpdate) -> Result<Committed<bool>> {
        self.tables.update_node(id, update).await
    }

    async fn delete_node(&self, id: &str) -> Result<Committed<bool>> {
        let (mut tx, version) = self.tables.begin_write(BUMP_NODES_REMOVED_SQL).await?;
        let deleted = Tables::delete_node_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(super::Committed::at(version, deleted))
    }

    async fn cluster_version(&self) -> Result<ClusterVersion> {
        self.tables.cluster_version().await
    }

    async fn changes_since(&self, since: u64) -> Result<FleetChanges> {
        // one read transaction: one consistent state of the file
        let mut tx = self.tables.reader.begin().await?;
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
        for deployment in &writes {
            self.write_deployment(&mut tx, deployment, version.version)
                .await?;
        }
        tx.commit().await?;
        Ok(Decided { version })
    }

    async fn export(&self) -> Result<Dump> {
        let mut tx = self.tables.writer.begin().await?;
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
        let (mut tx, version) = self
            .tables
            .begin_write(super::version::BUMP_ACCESS_SQL)
            .await?;
        Tables::check_empty(&mut tx).await?;
        Tables::import_nodes(&mut tx, &dump.nodes, version.version).await?;
        for deployment in &dump.deployments {
            self.write_deployment(&mut tx, deployment, version.version)
                .await?;
        }
        self.tables.import(&mut tx, &dump.access).await?;
        Tables::import_templates(&mut tx, &dump.templates).await?;
        tx.commit().await?;
        Ok(())
    }
}
