//! The node and deployment half of [`SqlTables`]: what both backends do the same
//! way, once, generic over `sqlx::Database` (the SQL is `super::sql`'s). Each
//! backend adds only what differs: how a transaction reads one consistent state,
//! how a decision's deployments are written and announced, how a list of node ids
//! is bound.

use sqlx::{Database, Transaction};

use super::{RowsAffected, SqlTables};
use crate::Result;
use crate::model::{Deployment, NodeMetrics, NodeUpdate};
use crate::store::rows::{DeploymentRow, NodeRow, StoredNodeRow, encode_json};
use crate::store::version::{NODE_IDS_SQL, READ_VERSION_SQL, VersionRow};
use crate::store::{
    ClusterVersion, Committed, Decided, Decider, FleetChanges, NodeExport, NodeUpsert, StoredNode,
};

/// How [`SqlTables::begin_decision`] ended.
pub(crate) enum DecisionStart<DB: Database> {
    /// Nothing to write: the decision is made.
    Decided(Decided),
    /// Write `writes` at `version` inside `tx`, then commit.
    Write {
        /// The open transaction, holding the version's row lock.
        tx: Transaction<'static, DB>,
        /// The version the writes carry.
        version: ClusterVersion,
        /// What the decision wrote.
        writes: Vec<Deployment>,
    },
}

/// An `i64` column value of a count or version.
fn column(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl<DB> SqlTables<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<bool>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    NodeRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    StoredNodeRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    DeploymentRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    VersionRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    (String,): for<'r> sqlx::FromRow<'r, DB::Row>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    (f64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    (String, f64): for<'r> sqlx::FromRow<'r, DB::Row>,
    (String, String): for<'r> sqlx::FromRow<'r, DB::Row>,
    DB::QueryResult: RowsAffected,
{
    /// A write transaction that has added one to the cluster version (with
    /// `bump`), holding its row lock until it ends, and that version.
    pub(crate) async fn begin_write(
        &self,
        bump: &'static str,
    ) -> Result<(Transaction<'static, DB>, ClusterVersion)> {
        let mut tx = self.writer.begin_with(self.begin).await?;
        let row: VersionRow = sqlx::query_as(bump).fetch_one(&mut *tx).await?;
        Ok((tx, ClusterVersion::from_row(row)))
    }

    /// The part of a decision both backends share: under the version's row lock,
    /// hands `decider` what changed since `known`, and answers the open
    /// transaction with the version to write at and what to write; or, when there
    /// is nothing to write, the version read (the transaction rolled back).
    pub(crate) async fn begin_decision(
        &self,
        known: Option<u64>,
        decider: Decider<'_>,
    ) -> Result<DecisionStart<DB>> {
        let (mut tx, version) = self
            .begin_write(crate::store::version::BUMP_VERSION_SQL)
            .await?;
        let before = ClusterVersion {
            version: version.before_write(),
            ..version
        };
        // (PostgreSQL: read committed, so each statement sees every write
        // committed before the version's row lock was granted)
        let changes = match known {
            Some(known) if known != before.version => {
                self.read_changes(&mut tx, known, before).await?
            }
            _ => FleetChanges::none(before),
        };
        let writes = decider(changes)?;
        if writes.is_empty() {
            tx.rollback().await?;
            return Ok(DecisionStart::Decided(Decided { version: before }));
        }
        Ok(DecisionStart::Write {
            tx,
            version,
            writes,
        })
    }

    /// The cluster version read inside `tx`.
    pub(crate) async fn version_in(tx: &mut Transaction<'_, DB>) -> Result<ClusterVersion> {
        let row: VersionRow = sqlx::query_as(READ_VERSION_SQL)
            .fetch_one(&mut **tx)
            .await?;
        Ok(ClusterVersion::from_row(row))
    }

    /// The cluster version now.
    pub(crate) async fn cluster_version(&self) -> Result<ClusterVersion> {
        let row: VersionRow = sqlx::query_as(READ_VERSION_SQL)
            .fetch_one(&self.reader)
            .await?;
        Ok(ClusterVersion::from_row(row))
    }

    /// What changed after `since`, up to `version`, read inside `tx`.
    pub(crate) async fn read_changes(
        &self,
        tx: &mut Transaction<'_, DB>,
        since: u64,
        version: ClusterVersion,
    ) -> Result<FleetChanges> {
        let nodes = sqlx::query_as::<_, StoredNodeRow>(crate::store::sql::NODES_SINCE_SQL)
            .bind(column(since))
            .fetch_all(&mut **tx)
            .await?;
        let node_ids = if since > 0 && version.nodes_removed_at > since {
            let ids: Vec<(String,)> = sqlx::query_as(NODE_IDS_SQL).fetch_all(&mut **tx).await?;
            Some(ids.into_iter().map(|(id,)| id).collect())
        } else {
            None
        };
        let rows = sqlx::query_as::<_, DeploymentRow>(crate::store::sql::DEPLOYMENTS_SINCE_SQL)
            .bind(column(since))
            .fetch(&mut **tx);
        let deployments =
            crate::store::rows::decode_deployments(rows, self.secrets.as_ref()).await?;
        Ok(FleetChanges {
            version,
            since,
            nodes: nodes
                .into_iter()
                .map(StoredNode::try_from)
                .collect::<Result<_>>()?,
            node_ids,
            deployments,
        })
    }

    /// Registrations in one transaction.
    pub(crate) async fn upsert_nodes(
        &self,
        nodes: &[NodeUpsert],
    ) -> Result<Committed<Vec<Option<String>>>> {
        let (mut tx, version) = self
            .begin_write(crate::store::version::BUMP_VERSION_SQL)
            .await?;
        let mut ids = Vec::with_capacity(nodes.len());
        for node in nodes {
            let capabilities = encode_json(&node.capabilities)?;
            let tags = encode_json(&node.tags)?;
            let id: Option<(String,)> = sqlx::query_as(crate::store::sql::UPSERT_NODE_SQL)
                .bind(node.new_id.as_str())
                .bind(node.name.as_str())
                .bind(node.ip.as_str())
                .bind(capabilities.as_str())
                .bind(tags.as_str())
                .bind(node.token_hash.as_str())
                .bind(node.now)
                .bind(node.only_new)
                .bind(column(version.version))
                .fetch_optional(&mut *tx)
                .await?;
            ids.push(id.map(|(id,)| id));
        }
        tx.commit().await?;
        Ok(Committed::at(version, ids))
    }

    /// Heartbeats in one transaction, each only moving `last_seen` forward.
    pub(crate) async fn record_heartbeats(
        &self,
        batch: &[(String, NodeMetrics)],
    ) -> Result<Committed<()>> {
        let (mut tx, version) = self
            .begin_write(crate::store::version::BUMP_VERSION_SQL)
            .await?;
        for (node_id, metrics) in batch {
            let encoded = encode_json(metrics)?;
            sqlx::query(crate::store::sql::HEARTBEAT_SQL)
                .bind(metrics.reported_at)
                .bind(encoded.as_str())
                .bind(column(version.version))
                .bind(node_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Committed::at(version, ()))
    }

    /// A cordon or tag change.
    pub(crate) async fn update_node(
        &self,
        id: &str,
        update: &NodeUpdate,
    ) -> Result<Committed<bool>> {
        let tags = update.tags.as_ref().map(encode_json).transpose()?;
        let (mut tx, version) = self
            .begin_write(crate::store::version::BUMP_VERSION_SQL)
            .await?;
        let done = sqlx::query(crate::store::sql::UPDATE_NODE_SQL)
            .bind(update.schedulable)
            .bind(tags.as_deref())
            .bind(column(version.version))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Committed::at(version, done.affected() == 1))
    }

    /// Removes a node inside `tx` (which marked the version as a removal).
    pub(crate) async fn delete_node_in(tx: &mut Transaction<'_, DB>, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(done.affected() == 1)
    }

    /// Every node (with its token hash) and deployment, read inside `tx`.
    pub(crate) async fn export_fleet(
        &self,
        tx: &mut Transaction<'_, DB>,
    ) -> Result<(Vec<NodeExport>, Vec<Deployment>)> {
        let records = sqlx::query_as::<_, NodeRow>(crate::store::sql::NODES_BY_NAME_SQL)
            .fetch_all(&mut **tx)
            .await?;
        let rows =
            sqlx::query_as::<_, DeploymentRow>(crate::store::sql::DEPLOYMENTS_SQL).fetch(&mut **tx);
        let deployments =
            crate::store::rows::decode_deployments(rows, self.secrets.as_ref()).await?;
        let hashes: Vec<(String, String)> = sqlx::query_as("SELECT id, token_hash FROM nodes")
            .fetch_all(&mut **tx)
            .await?;
        Ok((
            crate::store::rows::with_token_hashes(records, hashes)?,
            deployments,
        ))
    }

    /// Refuses (`Conflict`) a target that holds nodes or deployments, inside `tx`.
    pub(crate) async fn check_empty(tx: &mut Transaction<'_, DB>) -> Result<()> {
        let (nodes,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM nodes")
            .fetch_one(&mut **tx)
            .await?;
        let (deployments,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deployments")
            .fetch_one(&mut **tx)
            .await?;
        if nodes + deployments > 0 {
            return Err(crate::Error::Conflict(format!(
                "the target database is not empty ({nodes} nodes, {deployments} deployments)"
            )));
        }
        Ok(())
    }

    /// Writes the nodes of an import inside `tx`, at `version`.
    pub(crate) async fn import_nodes(
        tx: &mut Transaction<'_, DB>,
        nodes: &[NodeExport],
        version: u64,
    ) -> Result<()> {
        for NodeExport { record, token_hash } in nodes {
            let capabilities = encode_json(&record.capabilities)?;
            let tags = encode_json(&record.tags)?;
            let metrics = record.metrics.as_ref().map(encode_json).transpose()?;
            sqlx::query(crate::store::sql::IMPORT_NODE_SQL)
                .bind(record.id.as_str())
                .bind(record.name.as_str())
                .bind(record.ip.as_str())
                .bind(capabilities.as_str())
                .bind(tags.as_str())
                .bind(token_hash.as_str())
                .bind(record.registered_at)
                .bind(record.last_seen)
                .bind(metrics.as_deref())
                .bind(record.schedulable)
                .bind(column(version))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
