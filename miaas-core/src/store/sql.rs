//! The SQL both backends run, in one place (`$N` placeholders work in SQLite and
//! PostgreSQL). Column lists are in the order the row structs decode.

use std::sync::LazyLock;

use crate::model::DeploymentStatus;

/// One node by id ($1).
pub(crate) const NODE_BY_ID_SQL: &str = "SELECT id, name, ip, capabilities, tags, registered_at, last_seen, metrics, \
     schedulable FROM nodes WHERE id = $1";

/// Every node, by name.
pub(crate) const NODES_BY_NAME_SQL: &str = "SELECT id, name, ip, capabilities, tags, registered_at, last_seen, metrics, \
     schedulable FROM nodes ORDER BY name";

/// A page of nodes: after name $1, at most $2.
pub(crate) const NODES_PAGE_SQL: &str = "SELECT id, name, ip, capabilities, tags, registered_at, last_seen, metrics, \
     schedulable FROM nodes WHERE name > $1 ORDER BY name LIMIT $2";

/// Nodes written after version $1, with their token hashes.
pub(crate) const NODES_SINCE_SQL: &str = "SELECT id, name, ip, capabilities, tags, registered_at, last_seen, metrics, \
     schedulable, token_hash FROM nodes WHERE version > $1";

/// One deployment by id ($1).
pub(crate) const DEPLOYMENT_BY_ID_SQL: &str = "SELECT deployment_id, template_id, rendered_compose, env, action, status, \
     message, node_id, previous_node_id, requirements, gpu_ids, placement, \
     revision, created_at, updated_at, params, template_version, health, restarts FROM deployments WHERE deployment_id = $1";

/// Every deployment, oldest first.
pub(crate) const DEPLOYMENTS_SQL: &str = "SELECT deployment_id, template_id, rendered_compose, env, action, status, \
     message, node_id, previous_node_id, requirements, gpu_ids, placement, \
     revision, created_at, updated_at, params, template_version, health, restarts FROM deployments ORDER BY created_at, \
     deployment_id";

/// A page of deployments: after ($1, $2) by creation time and id, at most $3.
pub(crate) const DEPLOYMENTS_PAGE_SQL: &str = "SELECT deployment_id, template_id, rendered_compose, env, action, status, \
     message, node_id, previous_node_id, requirements, gpu_ids, placement, \
     revision, created_at, updated_at, params, template_version, health, restarts FROM deployments WHERE created_at > $1 OR \
     (created_at = $1 AND deployment_id > $2) ORDER BY created_at, deployment_id \
     LIMIT $3";

/// The deployments placed on node $1 or still to be removed from it, oldest first.
pub(crate) const DEPLOYMENTS_OF_NODE_SQL: &str = "SELECT deployment_id, template_id, rendered_compose, env, action, status, \
     message, node_id, previous_node_id, requirements, gpu_ids, placement, \
     revision, created_at, updated_at, params, template_version, health, restarts FROM deployments WHERE node_id = $1 OR \
     previous_node_id = $1 ORDER BY created_at, deployment_id";

/// Deployments written after version $1, oldest first.
pub(crate) const DEPLOYMENTS_SINCE_SQL: &str = "SELECT deployment_id, template_id, rendered_compose, env, action, status, \
     message, node_id, previous_node_id, requirements, gpu_ids, placement, \
     revision, created_at, updated_at, params, template_version, health, restarts FROM deployments WHERE version > $1 ORDER BY \
     created_at, deployment_id";

/// The statuses that `rule` holds for, as an SQL list of quoted names
/// (`'scheduled', 'running'`): the SQL follows the model's rules rather than
/// repeating them.
fn statuses_where(rule: fn(DeploymentStatus) -> bool) -> String {
    let names: Vec<String> = (DeploymentStatus::ALL.into_iter())
        .filter(|status| rule(*status))
        .map(|status| format!("'{}'", status.as_str()))
        .collect();
    names.join(", ")
}

/// What every deployment holding resources on a node reserves (see
/// [`DeploymentStatus::holds_resources`]), oldest first.
pub(crate) static RESERVATIONS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT deployment_id, node_id, requirements, gpu_ids FROM deployments WHERE \
         node_id IS NOT NULL AND status IN ({}) ORDER BY created_at, deployment_id",
        statuses_where(DeploymentStatus::holds_resources)
    )
});

/// Whether any deployment waits for capacity (see
/// [`DeploymentStatus::waits_for_capacity`]): a count of 0 or 1.
pub(crate) static WAITING_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM deployments WHERE status IN ({}) LIMIT 1) \
         AS waiting",
        statuses_where(DeploymentStatus::waits_for_capacity)
    )
});

/// Insert or replace a whole deployment: binds the columns in order, then the cluster version.
pub(crate) const UPSERT_DEPLOYMENT_SQL: &str = "INSERT INTO deployments (deployment_id, template_id, rendered_compose, env, \
     action, status, message, node_id, previous_node_id, requirements, gpu_ids, \
     placement, revision, created_at, updated_at, params, template_version, health, \
     restarts, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
     $14, $15, $16, $17, $18, $19, $20) ON CONFLICT \
     (deployment_id) DO UPDATE SET template_id = excluded.template_id, \
     rendered_compose = excluded.rendered_compose, env = excluded.env, action = \
     excluded.action, status = excluded.status, message = excluded.message, node_id \
     = excluded.node_id, previous_node_id = excluded.previous_node_id, requirements \
     = excluded.requirements, gpu_ids = excluded.gpu_ids, placement = \
     excluded.placement, revision = excluded.revision, updated_at = \
     excluded.updated_at, params = excluded.params, template_version = \
     excluded.template_version, health = excluded.health, restarts = excluded.restarts, \
     version = excluded.version";

/// What the deployments holding resources on nodes $1 reserve (SQLite: a JSON
/// array of ids).
pub(crate) static RESERVATIONS_ON_NODES_SQLITE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT deployment_id, node_id, requirements, gpu_ids FROM deployments WHERE \
         node_id IN (SELECT value FROM json_each($1)) AND status IN ({}) ORDER BY \
         created_at, deployment_id",
        statuses_where(DeploymentStatus::holds_resources)
    )
});

/// What the deployments holding resources on nodes $1 reserve (PostgreSQL: a
/// text array of ids).
pub(crate) static RESERVATIONS_ON_NODES_POSTGRES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT deployment_id, node_id, requirements, gpu_ids FROM deployments WHERE \
         node_id = ANY($1) AND status IN ({}) ORDER BY created_at, deployment_id",
        statuses_where(DeploymentStatus::holds_resources)
    )
});

/// The registration upsert of both backends: binds the fields of [`NodeUpsert`](super::NodeUpsert)
/// in order, then `only_new`, then the cluster version; returns the node's id, or
/// no row when `only_new` met an existing name.
pub(crate) const UPSERT_NODE_SQL: &str = "INSERT INTO nodes (id, name, ip, capabilities, tags, \
     token_hash, registered_at, last_seen, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $9) \
     ON CONFLICT (name) DO UPDATE SET ip = excluded.ip, \
     capabilities = excluded.capabilities, tags = excluded.tags, \
     token_hash = excluded.token_hash, last_seen = excluded.last_seen, \
     version = excluded.version \
     WHERE NOT $8 \
     RETURNING id";

/// A heartbeat of a batch: binds `last_seen`, metrics, version, node id; only
/// moves `last_seen` forward.
pub(crate) const HEARTBEAT_SQL: &str = "UPDATE nodes SET last_seen = $1, metrics = $2, \
     version = $3 WHERE id = $4 AND last_seen < $1";

/// A cordon or tag change: binds schedulable, tags (each kept when null), version,
/// node id.
pub(crate) const UPDATE_NODE_SQL: &str = "UPDATE nodes SET \
     schedulable = COALESCE($1, schedulable), tags = COALESCE($2, tags), version = $3 \
     WHERE id = $4";

/// A node as `miaas db copy` moves it: every column, then the cluster version.
pub(crate) const IMPORT_NODE_SQL: &str = "INSERT INTO nodes (id, name, ip, capabilities, tags, \
     token_hash, registered_at, last_seen, metrics, schedulable, version) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

#[cfg(test)]
mod tests {
    use super::*;

    /// The statuses named in the first `status IN (...)` of `sql`.
    fn listed(sql: &str) -> Vec<DeploymentStatus> {
        let (_, rest) = sql.split_once("status IN (").expect("a status list");
        let (list, _) = rest.split_once(')').expect("a closed list");
        (list.split(','))
            .map(|name| DeploymentStatus::parse(name.trim().trim_matches('\'')).expect("a status"))
            .collect()
    }

    #[test]
    fn the_sql_lists_exactly_the_statuses_of_the_rules() {
        let rule: Vec<DeploymentStatus> = (DeploymentStatus::ALL.into_iter())
            .filter(|status| status.holds_resources())
            .collect();
        for sql in [
            &*RESERVATIONS_SQL,
            &*RESERVATIONS_ON_NODES_SQLITE,
            &*RESERVATIONS_ON_NODES_POSTGRES,
        ] {
            assert_eq!(listed(sql), rule, "{sql}");
        }
        let waiting: Vec<DeploymentStatus> = (DeploymentStatus::ALL.into_iter())
            .filter(|status| status.waits_for_capacity())
            .collect();
        assert_eq!(listed(&WAITING_SQL), waiting);
        assert_eq!(
            statuses_where(DeploymentStatus::holds_resources),
            "'scheduled', 'running', 'failed', 'deleting', 'lost'"
        );
    }
}
