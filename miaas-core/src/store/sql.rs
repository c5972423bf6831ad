//! The SQL both backends run, in one place (`$N` placeholders work in SQLite and
//! PostgreSQL). Column lists are in the order the row structs decode.

/// Every node, by name.
pub(crate) const NODES_BY_NAME_SQL: &str = "SELECT id, name, ip, capabilities, tags, registered_at, last_seen, metrics, \
     schedulable FROM nodes ORDER BY name";

/// Nodes written after version $1, with their token hashes.
pub(crate) const NODES_SINCE_SQL: &str = "SELECT id, name, ip, capabilities, tags, registered_at, last_seen, metrics, \
     schedulable, token_hash FROM nodes WHERE version > $1";

/// Every deployment, oldest first.
pub(crate) const DEPLOYMENTS_SQL: &str = "SELECT deployment_id, template_id, rendered_compose, env, action, status, \
     message, node_id, previous_node_id, requirements, gpu_ids, placement, \
     revision, created_at, updated_at, params, template_version, health, restarts FROM deployments ORDER BY created_at, \
     deployment_id";

/// Deployments written after version $1, oldest first.
pub(crate) const DEPLOYMENTS_SINCE_SQL: &str = "SELECT deployment_id, template_id, rendered_compose, env, action, status, \
     message, node_id, previous_node_id, requirements, gpu_ids, placement, \
     revision, created_at, updated_at, params, template_version, health, restarts FROM deployments WHERE version > $1 ORDER BY \
     created_at, deployment_id";

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
