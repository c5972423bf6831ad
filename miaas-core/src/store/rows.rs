//! Row structs shared by the backends (sqlx derives them for any database whose
//! column types decode into these fields) and their mapping to domain types.

use serde::de::DeserializeOwned;

use crate::model::{
    Deployment, DeploymentAction, DeploymentHealth, DeploymentStatus, Env, NodeMetrics, NodeRecord,
};
use crate::secrets::Secrets;
use crate::{Error, Result};

pub(crate) fn decode_json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|err| Error::Corrupt(format!("{column}: {err}")))
}

pub(crate) fn encode_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|err| Error::Corrupt(err.to_string()))
}

#[derive(sqlx::FromRow)]
pub(crate) struct NodeRow {
    id: String,
    name: String,
    ip: String,
    capabilities: String,
    tags: String,
    registered_at: f64,
    last_seen: f64,
    metrics: Option<String>,
    schedulable: bool,
}

impl TryFrom<NodeRow> for NodeRecord {
    type Error = Error;

    fn try_from(row: NodeRow) -> Result<Self> {
        let metrics: Option<NodeMetrics> = row
            .metrics
            .as_deref()
            .map(|text| decode_json("metrics", text))
            .transpose()?;
        Ok(NodeRecord {
            capabilities: decode_json("capabilities", &row.capabilities)?,
            tags: decode_json("tags", &row.tags)?,
            id: row.id,
            name: row.name,
            ip: row.ip,
            registered_at: row.registered_at,
            last_seen: row.last_seen,
            metrics,
            schedulable: row.schedulable,
        })
    }
}

/// A node row with its token's hash (the change feed's).
#[derive(sqlx::FromRow)]
pub(crate) struct StoredNodeRow {
    #[sqlx(flatten)]
    node: NodeRow,
    token_hash: String,
}

impl TryFrom<StoredNodeRow> for super::StoredNode {
    type Error = Error;

    fn try_from(row: StoredNodeRow) -> Result<Self> {
        Ok(Self {
            record: NodeRecord::try_from(row.node)?,
            token_hash: row.token_hash,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeploymentRow {
    deployment_id: String,
    template_id: String,
    rendered_compose: String,
    env: String,
    action: String,
    status: String,
    message: String,
    node_id: Option<String>,
    previous_node_id: Option<String>,
    requirements: String,
    gpu_ids: String,
    placement: Option<String>,
    revision: i64,
    created_at: f64,
    updated_at: f64,
    params: Option<String>,
    template_version: Option<i64>,
    health: Option<String>,
    restarts: i64,
}

impl DeploymentRow {
    /// The deployment this row holds, its environment opened with `secrets`.
    pub(crate) fn into_deployment(self, secrets: Option<&Secrets>) -> Result<Deployment> {
        let row = self;
        let env_text = match secrets {
            Some(secrets) => secrets.open(&row.env)?,
            None if row.env.starts_with("enc1:") => {
                return Err(Error::Corrupt(
                    "the environment is encrypted and no secret key is configured".into(),
                ));
            }
            None => row.env.clone(),
        };
        let env: Env = decode_json("env", &env_text)?;
        Ok(Deployment {
            action: DeploymentAction::parse(&row.action)
                .ok_or_else(|| Error::Corrupt(format!("action: {:?}", row.action)))?,
            status: DeploymentStatus::parse(&row.status)
                .ok_or_else(|| Error::Corrupt(format!("status: {:?}", row.status)))?,
            revision: u32::try_from(row.revision)
                .map_err(|_| Error::Corrupt(format!("revision: {}", row.revision)))?,
            deployment_id: row.deployment_id,
            template_id: row.template_id,
            rendered_compose: row.rendered_compose,
            env,
            message: row.message,
            node_id: row.node_id,
            previous_node_id: row.previous_node_id,
            requirements: decode_json("requirements", &row.requirements)?,
            gpu_ids: decode_json("gpu_ids", &row.gpu_ids)?,
            placement: row
                .placement
                .as_deref()
                .map(|text| decode_json("placement", text))
                .transpose()?,
            params: row
                .params
                .as_deref()
                .map(|text| decode_json("params", text))
                .transpose()?,
            template_version: row
                .template_version
                .map(|v| {
                    u32::try_from(v).map_err(|_| Error::Corrupt(format!("template_version: {v}")))
                })
                .transpose()?,
            health: row
                .health
                .as_deref()
                .map(|text| {
                    DeploymentHealth::parse(text)
                        .ok_or_else(|| Error::Corrupt(format!("health: {text:?}")))
                })
                .transpose()?,
            restarts: u32::try_from(row.restarts)
                .map_err(|_| Error::Corrupt(format!("restarts: {}", row.restarts)))?,
            created_at: row.created_at,
            updated_at: row.updated_at,
            endpoints: Vec::new(),
        })
    }
}

/// Decodes deployments as their rows arrive (a fleet's rows are never all held at
/// once beside their deployments), each straight into what holds it (`Deployment`,
/// or `Arc<Deployment>` for the fleet state, never moved again).
pub(crate) async fn decode_deployments<S, T>(
    mut rows: S,
    secrets: Option<&Secrets>,
) -> Result<Vec<T>>
where
    S: futures_util::Stream<Item = std::result::Result<DeploymentRow, sqlx::Error>> + Unpin,
    T: From<Deployment>,
{
    use futures_util::TryStreamExt;
    let mut deployments = Vec::new();
    while let Some(row) = rows.try_next().await? {
        deployments.push(T::from(row.into_deployment(secrets)?));
    }
    Ok(deployments)
}

/// A deployment's environment as stored: sealed when `secrets` is given.
pub(crate) fn encode_env(env: &Env, secrets: Option<&Secrets>) -> Result<String> {
    let json = encode_json(env)?;
    match secrets {
        Some(secrets) => secrets.seal(&json),
        None => Ok(json),
    }
}

/// Pairs node rows with their token hashes (for export).
pub(crate) fn with_token_hashes(
    rows: Vec<NodeRow>,
    hashes: Vec<(String, String)>,
) -> Result<Vec<super::NodeExport>> {
    let hashes: std::collections::HashMap<String, String> = hashes.into_iter().collect();
    rows.into_iter()
        .map(|row| {
            let record = NodeRecord::try_from(row)?;
            let token_hash = hashes
                .get(&record.id)
                .cloned()
                .ok_or_else(|| Error::Corrupt(format!("node {} has no token", record.id)))?;
            Ok(super::NodeExport { record, token_hash })
        })
        .collect()
}
